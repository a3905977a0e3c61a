// Package mdt is the simulated metadata target MDT0000: it serves a
// namespace.Tree to the client's mdc, read-only.
//
// Opcodes handled (request portals 12, 13, 23, 29, 30; replies to 10):
//
//	MDS_CONNECT (38)        grants IBITS|ATTRFID|NODEVOH|VERSION|FID|FULL20|AT|ACL ∩ asked, ibits_known ∩ 0x1f;
//	                        replayable (MSG_CONNECT_REPLAYABLE), and a reconnect (pb_conn_cnt > 1) to a
//	                        live export keeps its handle (MSG_CONNECT_RECONNECT)
//	                        (ACL: no inode has one; getattr says so with OBD_MD_FLACL, aclsize 0)
//	MDS_GET_ROOT (40)       root FID [0x200000007:0x1:0x0] (also the staging MDS_GETSTATUS)
//	MDS_STATFS (41)         obd_statfs with the tree's inode count
//	MDS_GETATTR (33)        attributes by FID; symlink target with OBD_MD_LINKNAME
//	MDS_GETATTR_NAME (34)   attributes by parent FID and name
//	MDS_READPAGE (37)       lu_dirpages by bulk PUT to portal 14, then the reply
//	MDS_CLOSE (35)          forgets the open handle
//	MDS_GETXATTR (49)       -ENODATA for a name, an empty list for a listxattr
//	MDS_SYNC (44)           0
//	MDS_REINT (36)          -EROFS: the namespace changes only from the server side
//	LDLM_ENQUEUE (101)      plain IBITS (readdir) lock: granted; intents:
//	                        IT_GETATTR/IT_LOOKUP: positive → PR lock granted on the child
//	                        (LOOKUP|UPDATE|PERM for getattr, LOOKUP|PERM for lookup),
//	                        negative → ELDLM_LOCK_ABORTED with DISP_LOOKUP_NEG;
//	                        IT_OPEN: ELDLM_LOCK_ABORTED with DISP_OPEN_OPEN and an open handle;
//	                        IT_OPEN|IT_CREAT of a missing name: -EROFS (of an existing one with
//	                        O_EXCL: -EEXIST); other intents: ELDLM_LOCK_ABORTED with -EOPNOTSUPP
//	SEQ_QUERY (700)         a fresh metadata sequence
//	FLD_QUERY (900)         every sequence is on MDT0000
//
// OBD_PING, MDS_DISCONNECT and LDLM_CANCEL are answered for every target by
// package server. Requests are read and replies built through their
// formats (ptlrpc.Format); this list is checked against the dispatch map
// by the package's tests.
package mdt

import (
	"sync"
	"sync/atomic"

	"github.com/kregress/kregress/lustre/ldlm"
	"github.com/kregress/kregress/lustre/namespace"
	"github.com/kregress/kregress/lustre/ptlrpc"
)

// Supported are the connect flags the MDT grants (when asked).
const Supported = ptlrpc.ConnectIbits | ptlrpc.ConnectAttrFID | ptlrpc.ConnectNodevoh | ptlrpc.ConnectVersion |
	ptlrpc.ConnectFID | ptlrpc.ConnectFull20 | ptlrpc.ConnectAT | ptlrpc.ConnectACL

// ibitsKnown are the inode bits the MDT understands: LOOKUP, UPDATE,
// OPEN, LAYOUT, PERM (not XATTR, so the client keeps no xattr cache).
const ibitsKnown = 0x1f

// Service is the MDT.
type Service struct {
	FSName  string
	Tree    *namespace.Tree
	Exports *ptlrpc.Exports
	Locks   *ldlm.Table

	ops     map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply
	openSeq atomic.Uint64
	mu      sync.Mutex
	opens   map[uint64]namespace.FID
	seqNext atomic.Uint64
}

// New returns the MDT of fsname serving tree.
func New(fsname string, tree *namespace.Tree, ex *ptlrpc.Exports, locks *ldlm.Table) *Service {
	s := &Service{FSName: fsname, Tree: tree, Exports: ex, Locks: locks, opens: map[uint64]namespace.FID{}}
	s.openSeq.Store(0x0de0000000000000)
	s.seqNext.Store(0x200000401)
	s.ops = map[uint32]func(*ptlrpc.Request) *ptlrpc.Reply{
		ptlrpc.MDSConnect: s.connect,
		ptlrpc.MDSGetRoot: func(r *ptlrpc.Request) *ptlrpc.Reply {
			return r.Reply(0, ptlrpc.Set(ptlrpc.FieldMDTBody, (&Body{FID1: namespace.RootFID, Valid: MDFlID}).Marshal()))
		},
		ptlrpc.MDSStatfs: func(r *ptlrpc.Request) *ptlrpc.Reply {
			return r.Reply(0, ptlrpc.Set(ptlrpc.FieldOBDStatfs, s.statfs().Marshal()))
		},
		ptlrpc.MDSGetattr:     s.getattr,
		ptlrpc.MDSGetattrName: s.getattr,
		ptlrpc.MDSReadpage:    s.readpage,
		ptlrpc.MDSClose:       s.close,
		ptlrpc.MDSGetxattr:    s.getxattr,
		ptlrpc.MDSSync:        func(r *ptlrpc.Request) *ptlrpc.Reply { return r.Reply(0) },
		ptlrpc.MDSReint:       func(r *ptlrpc.Request) *ptlrpc.Reply { return r.Reply(-ptlrpc.EROFS) },
		ptlrpc.LDLMEnqueue:    s.enqueue,
		ptlrpc.SEQQuery:       s.seqQuery,
		ptlrpc.FLDQuery:       s.fldQuery,
	}
	return s
}

// TargetUUID is the MDT's UUID, the name the client connects to.
func (s *Service) TargetUUID() string { return s.FSName + "-MDT0000_UUID" }

// Opcodes lists the opcodes of the dispatch map, in order.
func (s *Service) Opcodes() []uint32 { return ptlrpc.SortedOpcodes(s.ops) }

// Handle serves one MDT request.
func (s *Service) Handle(r *ptlrpc.Request) *ptlrpc.Reply {
	if h, ok := s.ops[r.Body.Opc]; ok {
		return h(r)
	}
	return ptlrpc.ErrorReply(ptlrpc.EOPNOTSUPP)
}

func (s *Service) connect(r *ptlrpc.Request) *ptlrpc.Reply {
	return ptlrpc.Connect(r, s.Exports, s.TargetUUID(), Supported, 0, ptlrpc.MsgConnectReplayable, func(req, rep *ptlrpc.ConnectData) {
		rep.IbitsKnown = req.IbitsKnown & ibitsKnown
		rep.Instance = 1
	})
}

func (s *Service) statfs() *Statfs {
	n := uint64(s.Tree.Count())
	return &Statfs{Type: 0x0bd00bd0, Blocks: 1 << 20, Bfree: 1 << 19, Bavail: 1 << 19, Files: n + 1<<20,
		Ffree: 1 << 20, FSID: s.FSName, Bsize: 4096, Namelen: 255, Maxbyte: 1 << 50}
}

// attrReply is the getattr-style reply: MDT_BODY, MDT_MD, ACL, CAPA1,
// CAPA2, FILE_ENCCTX.
func (s *Service) attrBody(n *namespace.Node, wantValid uint64) (Body, []byte) {
	snap := s.Tree.Snapshot(n)
	b := AttrBody(&snap)
	if wantValid&MDFlACL != 0 {
		// No inode has an ACL: say so (OBD_MD_FLACL with aclsize 0).
		b.Valid |= MDFlACL
	}
	var md []byte
	if snap.Mode&namespace.ModeType == namespace.ModeSymlink && wantValid&MDLinkName != 0 {
		md = append([]byte(snap.Target), 0)
		b.Valid |= MDLinkName
		b.EASize = uint32(len(md))
	}
	return b, md
}

func (s *Service) getattr(r *ptlrpc.Request) *ptlrpc.Reply {
	req, err := UnmarshalBody(r.Get(ptlrpc.FieldMDTBody))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	var n *namespace.Node
	var ok bool
	if r.Format.Has(ptlrpc.FieldName) {
		n, ok = s.Tree.Lookup(req.FID1, r.GetString(ptlrpc.FieldName))
	} else {
		n, ok = s.Tree.ByFID(req.FID1)
	}
	if !ok {
		return r.Reply(-ptlrpc.ENOENT)
	}
	b, md := s.attrBody(n, req.Valid)
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldMDTBody, b.Marshal()), ptlrpc.Set(ptlrpc.FieldMDTMD, md))
}

func (s *Service) readpage(r *ptlrpc.Request) *ptlrpc.Reply {
	req, err := UnmarshalBody(r.Get(ptlrpc.FieldMDTBody))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	n, ok := s.Tree.ByFID(req.FID1)
	if !ok {
		return r.Reply(-ptlrpc.ENOENT)
	}
	if !n.IsDir() {
		return r.Reply(-ptlrpc.ENOTDIR)
	}
	ents, err := s.Tree.ReadDir(req.FID1, req.Size)
	if err != nil {
		return r.Reply(-ptlrpc.ENOENT)
	}
	attrs := (req.Mode & (ludaFID | ludaType)) | ludaFID
	pages := DirPages(ents, req.Size, int(req.Nlink), attrs)
	if err := r.SendBulk(ptlrpc.MDSBulkPortal, pages); err != nil {
		return r.Reply(-ptlrpc.EIO)
	}
	rep := Body{FID1: req.FID1, Size: uint64(len(pages)), Valid: MDFlSize}
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldMDTBody, rep.Marshal()))
}

func (s *Service) close(r *ptlrpc.Request) *ptlrpc.Reply {
	epoch := r.Get(ptlrpc.FieldMDTEpoch)
	if len(epoch) < 8 {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	h := le.Uint64(epoch)
	s.mu.Lock()
	_, ok := s.opens[h]
	delete(s.opens, h)
	s.mu.Unlock()
	status := int32(0)
	if !ok {
		status = -ptlrpc.ESTALE
	}
	return r.Reply(status)
}

func (s *Service) getxattr(r *ptlrpc.Request) *ptlrpc.Reply {
	req, err := UnmarshalBody(r.Get(ptlrpc.FieldMDTBody))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	if _, ok := s.Tree.ByFID(req.FID1); !ok {
		return r.Reply(-ptlrpc.ENOENT)
	}
	if req.Valid&MDFlXattrLs != 0 {
		return r.Reply(0, ptlrpc.Set(ptlrpc.FieldMDTBody, (&Body{FID1: req.FID1, Valid: MDFlXattrLs}).Marshal()))
	}
	return r.Reply(-ptlrpc.ENODATA)
}

func (s *Service) seqQuery(r *ptlrpc.Request) *ptlrpc.Reply {
	if len(r.Get(ptlrpc.FieldSeqRange)) < 24 {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	seq := s.seqNext.Add(1) - 1
	rng := make([]byte, 24)
	le.PutUint64(rng[0:], seq)
	le.PutUint64(rng[8:], seq+1)
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldSeqRange, rng))
}

func (s *Service) fldQuery(r *ptlrpc.Request) *ptlrpc.Reply {
	in := r.Get(ptlrpc.FieldFLDMdfld)
	if len(in) < 24 {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	seq := le.Uint64(in)
	rng := make([]byte, 24)
	le.PutUint64(rng[0:], seq)
	le.PutUint64(rng[8:], seq+1)
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldFLDMdfld, rng))
}

// IntentFailure is the reply of an intent enqueue that failed with errno:
// no lock (ELDLM_LOCK_ABORTED), the intent executed with -errno in
// lock_policy_res2, every other reply field of the format empty.
func IntentFailure(r *ptlrpc.Request, desc ldlm.LockDesc, errno int32) *ptlrpc.Reply {
	rep := ldlm.Reply{Desc: desc, PolicyRes1: ldlm.DispITExecd, PolicyRes2: negErr(errno)}
	return r.Reply(ldlm.LockAborted, ptlrpc.Set(ptlrpc.FieldDLMRep, rep.Marshal()))
}

// enqueue serves LDLM_ENQUEUE: plain when the request has no intent, else
// by the format the intent chose.
func (s *Service) enqueue(r *ptlrpc.Request) *ptlrpc.Reply {
	dreq, err := ldlm.UnmarshalRequest(r.Get(ptlrpc.FieldDLMReq))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	var cookie uint64
	if len(dreq.Handles) > 0 {
		cookie = dreq.Handles[0]
	}
	if r.Format == ptlrpc.FmtLDLMEnqueue {
		l := s.Locks.Grant(dreq.Desc, cookie, r.Export)
		rep := ldlm.Reply{Desc: l.Desc, Handle: l.Cookie}
		return r.Reply(0, ptlrpc.Set(ptlrpc.FieldDLMRep, rep.Marshal()))
	}
	it := r.Get(ptlrpc.FieldLDLMIntent)
	if len(it) < 8 {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	opc := le.Uint64(it)
	switch r.Format {
	case ptlrpc.FmtLDLMIntentGetattr:
		return s.intentGetattr(r, &dreq, cookie, opc)
	case ptlrpc.FmtLDLMIntentOpen:
		return s.intentOpen(r, &dreq, opc&ptlrpc.ITCreat != 0)
	}
	return IntentFailure(r, dreq.Desc, ptlrpc.EOPNOTSUPP)
}

// intentGetattr serves IT_GETATTR and IT_LOOKUP. A found name is granted
// the lock a real MDT grants (mdt_intent_getattr): PR on the child with
// LOOKUP|UPDATE|PERM for a getattr and LOOKUP|PERM for a lookup, whatever
// bits the client asked for (it asks UPDATE or LOOKUP alone), flagged
// LOCK_CHANGED so the client takes the reply's mode and bits. With these
// the client answers a later stat from its cache (mdc_revalidate_lock
// needs UPDATE|PERM, a dentry stays valid under LOOKUP) instead of
// enqueuing again and cancelling the duplicate.
func (s *Service) intentGetattr(r *ptlrpc.Request, dreq *ldlm.Request, cookie uint64, opc uint64) *ptlrpc.Reply {
	body, err := UnmarshalBody(r.Get(ptlrpc.FieldMDTBody))
	if err != nil {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	name := r.GetString(ptlrpc.FieldName)
	var n *namespace.Node
	var ok bool
	if name == "" {
		n, ok = s.Tree.ByFID(body.FID1)
	} else {
		n, ok = s.Tree.Lookup(body.FID1, name)
	}
	if !ok {
		if _, parentOK := s.Tree.ByFID(body.FID1); !parentOK {
			return IntentFailure(r, dreq.Desc, ptlrpc.ENOENT)
		}
		rep := ldlm.Reply{Desc: dreq.Desc, PolicyRes1: ldlm.DispITExecd | ldlm.DispLookupExecd | ldlm.DispLookupNeg}
		return r.Reply(ldlm.LockAborted, ptlrpc.Set(ptlrpc.FieldDLMRep, rep.Marshal()))
	}
	b, md := s.attrBody(n, body.Valid)
	desc := dreq.Desc
	bits := uint64(ldlm.BitLookup | ldlm.BitPerm)
	if opc&ptlrpc.ITGetattr != 0 {
		bits |= ldlm.BitUpdate
	}
	var flags uint32
	if res := ResourceOf(n.FID); res != desc.Resource {
		desc.Resource = res
		flags |= ldlm.FlagLockChanged
	}
	if desc.Bits() != bits || desc.ReqMode != ldlm.ModePR {
		desc.SetBits(bits)
		desc.ReqMode = ldlm.ModePR
		flags |= ldlm.FlagLockChanged
	}
	l := s.Locks.Grant(desc, cookie, r.Export)
	rep := ldlm.Reply{Flags: flags, Desc: l.Desc, Handle: l.Cookie,
		PolicyRes1: ldlm.DispITExecd | ldlm.DispLookupExecd | ldlm.DispLookupPos}
	return r.Reply(0, ptlrpc.Set(ptlrpc.FieldDLMRep, rep.Marshal()), ptlrpc.Set(ptlrpc.FieldMDTBody, b.Marshal()),
		ptlrpc.Set(ptlrpc.FieldMDTMD, md))
}

// openExcl is MDS_OPEN_EXCL (O_EXCL) in cr_flags.
const openExcl = 0o200

// intentOpen serves IT_OPEN, with IT_CREAT when create: an existing name
// opens (O_EXCL gives -EEXIST); creating a missing one gives -EROFS, as
// on a file system mounted read-only.
func (s *Service) intentOpen(r *ptlrpc.Request, dreq *ldlm.Request, create bool) *ptlrpc.Reply {
	rec := r.Get(ptlrpc.FieldRecReint)
	if len(rec) < recReintSize {
		return ptlrpc.ErrorReply(ptlrpc.EPROTO)
	}
	parent, target := GetFID(rec[40:]), GetFID(rec[56:])
	name := r.GetString(ptlrpc.FieldName)
	var n *namespace.Node
	var ok bool
	if target.Seq != 0 {
		n, ok = s.Tree.ByFID(target)
	} else {
		n, ok = s.Tree.Lookup(parent, name)
	}
	switch {
	case create && !ok:
		return IntentFailure(r, dreq.Desc, ptlrpc.EROFS)
	case create && le.Uint32(rec[120:])&openExcl != 0:
		return IntentFailure(r, dreq.Desc, ptlrpc.EEXIST)
	}
	if !ok {
		rep := ldlm.Reply{Desc: dreq.Desc, PolicyRes1: ldlm.DispITExecd | ldlm.DispLookupExecd | ldlm.DispLookupNeg,
			PolicyRes2: negErr(ptlrpc.ENOENT)}
		return r.Reply(ldlm.LockAborted, ptlrpc.Set(ptlrpc.FieldDLMRep, rep.Marshal()))
	}
	h := s.openSeq.Add(1)
	s.mu.Lock()
	s.opens[h] = n.FID
	s.mu.Unlock()
	b, _ := s.attrBody(n, 0)
	b.OpenHandle = h
	b.Valid |= MDFlHandle
	rep := ldlm.Reply{Desc: dreq.Desc,
		PolicyRes1: ldlm.DispITExecd | ldlm.DispLookupExecd | ldlm.DispLookupPos | ldlm.DispOpenOpen}
	return r.Reply(ldlm.LockAborted, ptlrpc.Set(ptlrpc.FieldDLMRep, rep.Marshal()), ptlrpc.Set(ptlrpc.FieldMDTBody, b.Marshal()))
}

// negErr is a negative errno as the u64 of lock_policy_res2.
func negErr(errno int32) uint64 { return uint64(int64(-errno)) }
