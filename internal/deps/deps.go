//go:build tools

// Package deps pins the module's third-party dependencies until code uses them.
package deps

import (
	_ "github.com/digitalocean/go-qemu/qmp"
	_ "github.com/u-root/u-root/pkg/cpio"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/term"
	_ "gopkg.in/yaml.v3"
)
