package build

import (
	"errors"
	"fmt"
)

// InputError is a request that cannot work: a missing or unreadable source,
// a source that is not a kernel tree, an unknown preset or ref, a series
// that is no series. It is found before anything is changed; commands exit
// 2 for it, and it is never a verdict about the patches.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }

func (e *InputError) Unwrap() error { return e.Err }

// badInput returns an *InputError with a formatted message (%w wraps).
func badInput(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// ErrorClass says what a build error means.
type ErrorClass int

// Build error classes.
const (
	// ClassNone: no error, the kernel built.
	ClassNone ErrorClass = iota
	// ClassNoApply: a patch of the series does not apply (*ApplyError).
	ClassNoApply
	// ClassNoBuild: make failed (*CompileError): the kernel with the
	// series does not build; or a client tree does not configure against
	// the kernel (*ConfigureError).
	ClassNoBuild
	// ClassBadInput: the request cannot work (*InputError).
	ClassBadInput
	// ClassInfra: anything else (a canceled build, a full disk, a
	// missing tool): kregress could not tell.
	ClassInfra
)

func (c ErrorClass) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassNoApply:
		return "no-apply"
	case ClassNoBuild:
		return "no-build"
	case ClassBadInput:
		return "bad input"
	}
	return "infra"
}

// Classify returns err's class. It is the one place that decides whether a
// build error is about the patches (no-apply, no-build), about the request
// (bad input) or about kregress's environment (infra).
func Classify(err error) ErrorClass {
	var ie *InputError
	var ae *ApplyError
	var ce *CompileError
	var fe *ConfigureError
	switch {
	case err == nil:
		return ClassNone
	case errors.As(err, &ie):
		return ClassBadInput
	case errors.As(err, &ae):
		return ClassNoApply
	case errors.As(err, &ce), errors.As(err, &fe):
		return ClassNoBuild
	}
	return ClassInfra
}
