package build

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestEndedSaysTheCause: an interrupted build says which signal or limit
// ended it, and stays a context error for errors.Is.
func TestEndedSaysTheCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("SIGTERM received"))
	if err := ended(ctx); err.Error() != "SIGTERM received" || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled with a cause: %v (is Canceled: %v)", err, errors.Is(err, context.Canceled))
	}
	ctx, stop := context.WithTimeoutCause(context.Background(), time.Nanosecond, errors.New("--timeout 1ns expired"))
	defer stop()
	<-ctx.Done()
	if err := ended(ctx); err.Error() != "--timeout 1ns expired" || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timed out with a cause: %v", err)
	}
	ctx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := ended(ctx); err != context.Canceled {
		t.Errorf("canceled without a cause: %v", err)
	}
}
