package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kregress/kregress/build"
	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/job"
)

// clientSpec returns the client flags as a job.ClientSpec (nil without
// --client); a --client-series without --client is an error.
func (b *buildFlags) clientSpec() (*job.ClientSpec, error) {
	if b.client == "" {
		if b.clientSeries != "" || b.clientBase != "" {
			return nil, errors.New("--client-series and --client-base need the client tree (--client TREE)")
		}
		return nil, nil
	}
	if _, err := os.Stat(b.client); err != nil {
		return nil, fmt.Errorf("--client: %w", err)
	}
	return &job.ClientSpec{Tree: b.client, Base: b.clientBase, ConfigureArgs: b.configureArgs}, nil
}

// distroKernel returns the kernel tree of a distribution kernel's bzImage
// from its installed headers.
func distroKernel(bzImage string) (build.KernelTree, error) {
	rel, err := images.KernelRelease(bzImage)
	if err != nil {
		return build.KernelTree{}, err
	}
	return build.DistroKernel(rel)
}

// buildClient builds the --client tree with the --client-series against
// kt and returns the result and the modules a Lustre mount needs.
func (b *buildFlags) buildClient(ctx context.Context, kt build.KernelTree, progress io.Writer) (*build.ClientResult, []string, error) {
	req := build.ClientRequest{Tree: b.client, Base: b.clientBase, Kernel: kt, ConfigureArgs: b.configureArgs, Jobs: b.jobs, Progress: progress}
	if b.clientSeries != "" {
		var err error
		if req.Patches, err = build.LoadSeries(ctx, b.client, b.clientSeries); err != nil {
			return nil, nil, err
		}
	}
	cr, err := build.BuildClient(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	mods, err := job.ClientModules(cr.Modules)
	if err != nil {
		return nil, nil, err
	}
	return cr, mods, nil
}
