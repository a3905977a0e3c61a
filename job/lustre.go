package job

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/kregress/kregress/images"
	"github.com/kregress/kregress/lustre/server"
	"github.com/kregress/kregress/suites"
)

// DefaultLustreTree is the namespace the simulated server serves when the
// job names none: the shipped lustre-sanity suite expects its names
// (d0000.., f000000..).
const DefaultLustreTree = "dirs=4,files=16"

// guestHostAddr is the host as a guest under QEMU user networking sees it.
const guestHostAddr = "10.0.2.2"

// startLustre starts the simulated server on a free loopback port and
// adds the client modules, with lnet told that port, to the image.
func (r *run) startLustre(ctx context.Context, img *images.Spec) error {
	ls := r.spec.Lustre
	if len(ls.Modules) == 0 {
		return errors.New("the lustre target needs the Lustre client modules for this kernel (kregress run --lustre-modules DIR)")
	}
	fsname := ls.FSName
	if fsname == "" {
		fsname = "testfs"
	}
	rpcLog, err := os.Create(r.dir.File("lustre-rpcs.log"))
	if err != nil {
		return err
	}
	srvLog, err := os.Create(r.dir.File("lustre-server.log"))
	if err != nil {
		rpcLog.Close()
		return err
	}
	// The user's tree, else the one the suite expects, else the default.
	gen := ls.Generate
	if gen == "" && ls.TreeFile == "" {
		gen = r.spec.Suite.LustreTree
	}
	if gen == "" && ls.TreeFile == "" {
		gen = DefaultLustreTree
	}
	srv, err := server.Start(ctx, server.Config{
		Listen: "127.0.0.1:0", FSName: fsname, TreeFile: ls.TreeFile, Generate: gen,
		FaultsFile: ls.FaultsFile, LogRPCs: rpcLog, Log: srvLog, OSTs: 1,
	})
	if err != nil {
		rpcLog.Close()
		srvLog.Close()
		return fmt.Errorf("start the simulated Lustre server: %w", err)
	}
	r.lustre = &lustreRun{Server: srv, fsname: fsname, logs: []*os.File{rpcLog, srvLog}}
	port := srv.Addr().(*net.TCPAddr).Port
	r.spec.Progress("lustre: simulated server %s on 127.0.0.1:%d (guest: %s@tcp:/%s)", fsname, port, guestHostAddr, fsname)
	img.ExtraModules = append(img.ExtraModules, ls.Modules...)
	if img.ModuleParams == nil {
		img.ModuleParams = map[string]string{}
	}
	// Current clients open their bulk connections to accept_port_bulk, a
	// separate setting; older ones ignore the unknown parameter.
	img.ModuleParams["lnet"] = fmt.Sprintf("networks=tcp0(eth0) accept_port=%d accept_port_bulk=%d", port, port)
	return nil
}

// lustreMount is the guest command that mounts the simulated server.
func (r *run) lustreMount() string {
	dev := fmt.Sprintf("%s@tcp:/%s", guestHostAddr, r.lustre.fsname)
	return fmt.Sprintf("mkdir -p %s && mount -t lustre -o device=%s %s %s", suites.Mount, dev, dev, suites.Mount)
}

// lustreRun is a running simulated server and its log files.
type lustreRun struct {
	*server.Server
	fsname string
	logs   []*os.File
}

// Close stops the server and closes its logs.
func (l *lustreRun) Close() error {
	err := l.Server.Close()
	for _, f := range l.logs {
		f.Close()
	}
	return err
}
