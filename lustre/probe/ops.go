package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/mdt"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// Attr is what the server says about one inode.
type Attr struct {
	mdt.Body
	// LinkTarget is a symlink's target when asked for.
	LinkTarget string
}

func (c *Client) enqueuePlain(ctx context.Context, portal uint32, handle uint64, typ, mode uint32, res ldlm.Resource, bits uint64) (uint64, error) {
	our := c.xid.Add(1) | 1<<62
	req := ldlm.Request{Count: 1, Desc: ldlm.LockDesc{ResType: typ, Resource: res, ReqMode: mode}, Handles: []uint64{our, 0}}
	if bits != 0 {
		req.Desc.SetBits(bits)
	}
	r, err := c.Call(ctx, portal, ptlrpc.LDLMEnqueue, ldlm.DLMVersion, handle, false, req.Marshal())
	if err != nil {
		return 0, err
	}
	rep, err := ldlm.UnmarshalReply(r.Msg.Buf(1))
	if err != nil {
		return 0, fmt.Errorf("probe: LDLM_ENQUEUE: %w", err)
	}
	if rep.Handle == 0 || rep.Desc.GrantedMode != mode || rep.Desc.Resource != res {
		return 0, fmt.Errorf("probe: LDLM_ENQUEUE: not granted as asked: %+v", rep)
	}
	c.mu.Lock()
	c.lockCookies[our] = rep.Handle
	c.mu.Unlock()
	return rep.Handle, nil
}

// CancelBatch is the most lock handles one LDLM_CANCEL carries, as a real
// client packs them (ldlm_cli_cancel_req): as many as fit, after the
// request's other bytes, in the smaller of LDLM_MAXREQSIZE (5 KiB) and a
// 4 KiB page less 512 bytes, plus the two handles ldlm_request holds
// anyway. A cancel of every lock in one message would outgrow the 1 MiB
// LNet MTU at 131,072 locks.
var CancelBatch = (min(5*1024, 4096-512)-ptlrpc.Size(ptlrpc.BodySize, ldlm.RequestSize))/8 + 2

// cancelLocks cancels locks, CancelBatch handles per LDLM_CANCEL; it stops
// at the first failed cancel.
func (c *Client) cancelLocks(ctx context.Context, handle uint64, cookies ...uint64) error {
	for len(cookies) > 0 {
		n := min(len(cookies), CancelBatch)
		req := ldlm.Request{Count: uint32(n), Handles: cookies[:n]}
		if _, err := c.Call(ctx, ptlrpc.LDLMCancelRequest, ptlrpc.LDLMCancel, ldlm.DLMVersion, handle, false, req.Marshal()); err != nil {
			return fmt.Errorf("probe: cancelling %d locks (%d more left): %w", n, len(cookies)-n, err)
		}
		cookies = cookies[n:]
	}
	return nil
}

// Statfs asks the MDT for filesystem usage.
func (c *Client) Statfs(ctx context.Context) (mdt.Statfs, error) {
	r, err := c.Call(ctx, ptlrpc.MDSRequestPortal, ptlrpc.MDSStatfs, 0x00020000, c.mdtHandle, false)
	if err != nil {
		return mdt.Statfs{}, err
	}
	st, err := mdt.UnmarshalStatfs(r.Msg.Buf(1))
	if err != nil {
		return st, fmt.Errorf("probe: MDS_STATFS: %w", err)
	}
	if st.Bsize == 0 {
		return st, fmt.Errorf("probe: MDS_STATFS: os_bsize is 0")
	}
	return st, nil
}

// Getattr asks for the attributes of a FID (MDS_GETATTR on portal 23).
func (c *Client) Getattr(ctx context.Context, fid namespace.FID) (Attr, error) {
	req := mdt.Body{FID1: fid, Valid: mdt.MDFlGetattr | mdt.MDLinkName, EASize: 4096}
	r, err := c.Call(ctx, ptlrpc.MDSReadpagePortal, ptlrpc.MDSGetattr, 0x00020000, c.mdtHandle, false, req.Marshal(), nil)
	if err != nil {
		return Attr{}, err
	}
	if len(r.Msg.Bufs) < 6 {
		return Attr{}, fmt.Errorf("probe: MDS_GETATTR: %d reply buffers, want at least 6", len(r.Msg.Bufs))
	}
	return decodeAttr("MDS_GETATTR", r.Msg.Buf(1), r.Msg.Buf(2))
}

func decodeAttr(op string, body, md []byte) (Attr, error) {
	b, err := mdt.UnmarshalBody(body)
	if err != nil {
		return Attr{}, fmt.Errorf("probe: %s: %w", op, err)
	}
	a := Attr{Body: b}
	if b.Valid&mdt.MDLinkName != 0 {
		if int(b.EASize) != len(md) || len(md) == 0 || md[len(md)-1] != 0 {
			return a, fmt.Errorf("probe: %s: link name of %d bytes, eadatasize %d", op, len(md), b.EASize)
		}
		a.LinkTarget = string(md[:len(md)-1])
	}
	return a, nil
}

// Lookup resolves name in directory dir with an intent GETATTR enqueue,
// as the kernel does for a path component. It returns ENOENT as a
// StatusError with status -2.
func (c *Client) Lookup(ctx context.Context, dir namespace.FID, name string) (Attr, error) {
	our := c.xid.Add(1) | 1<<62
	req := ldlm.Request{Count: 1, Desc: ldlm.LockDesc{ResType: ldlm.TypeIbits, Resource: mdt.ResourceOf(dir), ReqMode: ldlm.ModePR},
		Handles: []uint64{our, 0}}
	req.Desc.SetBits(ldlm.BitLookup | ldlm.BitUpdate | ldlm.BitPerm)
	it := make([]byte, 8)
	le.PutUint64(it, ptlrpc.ITGetattr)
	body := mdt.Body{FID1: dir, Valid: mdt.MDFlGetattr, EASize: 4096}
	r, err := c.Call(ctx, ptlrpc.MDSRequestPortal, ptlrpc.LDLMEnqueue, ldlm.DLMVersion, c.mdtHandle, false,
		req.Marshal(), it, body.Marshal(), nil, cstr(name))
	if err != nil {
		return Attr{}, err
	}
	if len(r.Msg.Bufs) < 6 {
		return Attr{}, fmt.Errorf("probe: intent getattr %q: %d reply buffers", name, len(r.Msg.Bufs))
	}
	rep, err := ldlm.UnmarshalReply(r.Msg.Buf(1))
	if err != nil {
		return Attr{}, fmt.Errorf("probe: intent getattr %q: %w", name, err)
	}
	if rep.PolicyRes1&ldlm.DispITExecd == 0 {
		return Attr{}, fmt.Errorf("probe: intent getattr %q: disposition %#x lacks IT_EXECD", name, rep.PolicyRes1)
	}
	if res2 := int32(int64(rep.PolicyRes2)); res2 != 0 {
		return Attr{}, &StatusError{Op: "intent getattr " + name, Status: res2}
	}
	if rep.PolicyRes1&ldlm.DispLookupNeg != 0 {
		if r.Body.Status != ldlm.LockAborted {
			return Attr{}, fmt.Errorf("probe: negative lookup %q: status %d, want %d", name, r.Body.Status, ldlm.LockAborted)
		}
		return Attr{}, &StatusError{Op: "lookup " + name, Status: -ptlrpc.ENOENT}
	}
	if rep.PolicyRes1&ldlm.DispLookupPos == 0 {
		return Attr{}, fmt.Errorf("probe: intent getattr %q: disposition %#x neither positive nor negative", name, rep.PolicyRes1)
	}
	a, err := decodeAttr("intent getattr "+name, r.Msg.Buf(2), r.Msg.Buf(3))
	if err != nil {
		return a, err
	}
	if r.Body.Status == 0 {
		// Granted: the lock must be on the child, as the kernel asserts.
		if rep.Handle == 0 || rep.Desc.Resource != mdt.ResourceOf(a.FID1) {
			return a, fmt.Errorf("probe: intent getattr %q: granted lock %#x on %v, child is %v", name, rep.Handle,
				mdt.FIDOfResource(rep.Desc.Resource), a.FID1)
		}
		c.mu.Lock()
		c.lockCookies[our] = rep.Handle
		c.mu.Unlock()
	} else if r.Body.Status != ldlm.LockAborted {
		return a, fmt.Errorf("probe: intent getattr %q: status %d", name, r.Body.Status)
	}
	return a, nil
}

// Stat resolves a path from the root, one component at a time.
func (c *Client) Stat(ctx context.Context, path string) (Attr, error) {
	cur := c.Root
	a, err := c.Getattr(ctx, cur)
	if err != nil {
		return a, err
	}
	for _, comp := range strings.Split(path, "/") {
		if comp == "" || comp == "." {
			continue
		}
		a, err = c.Lookup(ctx, cur, comp)
		if err != nil {
			return a, err
		}
		cur = a.FID1
	}
	return a, nil
}

// ReadDir lists a directory: an UPDATE lock on it, MDS_READPAGE with bulk
// until the end marker, then the lock is cancelled.
func (c *Client) ReadDir(ctx context.Context, path string) ([]namespace.DirEntry, error) {
	a, err := c.Stat(ctx, path)
	if err != nil {
		return nil, err
	}
	if a.Mode&namespace.ModeType != namespace.ModeDir {
		return nil, fmt.Errorf("probe: %q is not a directory", path)
	}
	lock, err := c.enqueuePlain(ctx, ptlrpc.MDSRequestPortal, c.mdtHandle, ldlm.TypeIbits, ldlm.ModePR, mdt.ResourceOf(a.FID1), ldlm.BitUpdate)
	if err != nil {
		return nil, err
	}
	ents, err := c.readPages(ctx, path, a.FID1)
	if cerr := c.cancelLocks(ctx, c.mdtHandle, lock); err == nil {
		err = cerr
	}
	return ents, err
}

func (c *Client) readPages(ctx context.Context, path string, dir namespace.FID) ([]namespace.DirEntry, error) {
	var out []namespace.DirEntry
	hash := uint64(0)
	for i := 0; i < 1<<20; i++ {
		req := mdt.Body{FID1: dir, Size: hash, Nlink: 4096, Mode: 0x3, Valid: mdt.MDFlSize}
		r, err := c.Call(ctx, ptlrpc.MDSReadpagePortal, ptlrpc.MDSReadpage, 0x00020000, c.mdtHandle, true, req.Marshal(), nil)
		if err != nil {
			return nil, err
		}
		ents, end, err := mdt.ParseDirPages(r.Bulk)
		if err != nil {
			return nil, fmt.Errorf("probe: readdir %q: %w", path, err)
		}
		for _, e := range ents {
			if e.Hash < hash {
				return nil, fmt.Errorf("probe: readdir %q: entry %q hash %d below start %d", path, e.Name, e.Hash, hash)
			}
		}
		out = append(out, ents...)
		if end == 0xfffffffffffffffe {
			return out, nil
		}
		if end <= hash {
			return nil, fmt.Errorf("probe: readdir %q: hash_end %d does not advance past %d", path, end, hash)
		}
		hash = end
	}
	return nil, fmt.Errorf("probe: readdir %q never ended", path)
}

// Unmount cancels our locks, in batches as a real client does, and
// disconnects from every target. It goes through every step and returns
// what failed, including a cancel that failed after a blocking AST.
func (c *Client) Unmount(ctx context.Context) error {
	c.mu.Lock()
	var cookies []uint64
	for k, v := range c.lockCookies {
		cookies = append(cookies, v)
		delete(c.lockCookies, k)
	}
	errs := c.astErrs
	c.astErrs = nil
	c.mu.Unlock()
	if len(cookies) > 0 {
		errs = append(errs, c.cancelLocks(ctx, c.mdtHandle, cookies...))
	}
	_, err := c.Call(ctx, ptlrpc.MDSRequestPortal, ptlrpc.MDSDisconnect, 0x00020000, c.mdtHandle, false)
	errs = append(errs, err)
	for _, h := range c.ostHandles {
		_, err := c.Call(ctx, ptlrpc.OSTRequestPortal, ptlrpc.OSTDisconnect, 0x00030000, h, false)
		errs = append(errs, err)
	}
	_, err = c.Call(ctx, ptlrpc.MGSRequestPortal, ptlrpc.MGSDisconnect, 0x00060000, c.mgsHandle, false)
	errs = append(errs, err)
	return errors.Join(errs...)
}

// Ping sends OBD_PING to the MDT.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Call(ctx, ptlrpc.MDSRequestPortal, ptlrpc.OBDPing, 0x00010000, c.mdtHandle, false)
	return err
}
