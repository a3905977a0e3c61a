package ptlrpc

import (
	"slices"
	"strconv"
)

// Opcodes (lustre_idl.h).
const (
	OSTGetattr    = 1
	OSTConnect    = 8
	OSTDisconnect = 9
	OSTStatfs     = 13

	MDSGetattr     = 33
	MDSGetattrName = 34
	MDSClose       = 35
	MDSReint       = 36
	MDSReadpage    = 37
	MDSConnect     = 38
	MDSDisconnect  = 39
	MDSGetRoot     = 40
	MDSStatfs      = 41
	MDSSync        = 44
	MDSGetxattr    = 49

	LDLMEnqueue    = 101
	LDLMConvert    = 102
	LDLMCancel     = 103
	LDLMBLCallback = 104
	LDLMCPCallback = 105
	LDLMGLCallback = 106

	MGSConnect    = 250
	MGSDisconnect = 251
	MGSConfigRead = 256

	OBDPing = 400

	LLOGOriginHandleCreate     = 501
	LLOGOriginHandleNextBlock  = 502
	LLOGOriginHandleReadHeader = 503
	LLOGOriginHandlePrevBlock  = 508
	LLOGOriginHandleDestroy    = 509

	SEQQuery = 700
	FLDQuery = 900
)

var opNames = map[uint32]string{
	OSTGetattr: "OST_GETATTR", 2: "OST_SETATTR", 3: "OST_READ", 4: "OST_WRITE", 5: "OST_CREATE",
	6: "OST_DESTROY", 7: "OST_GET_INFO", OSTConnect: "OST_CONNECT", OSTDisconnect: "OST_DISCONNECT",
	10: "OST_PUNCH", OSTStatfs: "OST_STATFS", 16: "OST_SYNC", 17: "OST_SET_INFO", 19: "OST_QUOTACTL",
	MDSGetattr: "MDS_GETATTR", MDSGetattrName: "MDS_GETATTR_NAME", MDSClose: "MDS_CLOSE", MDSReint: "MDS_REINT",
	MDSReadpage: "MDS_READPAGE", MDSConnect: "MDS_CONNECT", MDSDisconnect: "MDS_DISCONNECT",
	MDSGetRoot: "MDS_GET_ROOT", MDSStatfs: "MDS_STATFS", MDSSync: "MDS_SYNC", 46: "MDS_SET_INFO",
	48: "MDS_QUOTACTL", MDSGetxattr: "MDS_GETXATTR", 51: "MDS_WRITEPAGE", 53: "MDS_GET_INFO", 63: "MDS_BATCH",
	LDLMEnqueue: "LDLM_ENQUEUE", LDLMConvert: "LDLM_CONVERT", LDLMCancel: "LDLM_CANCEL",
	LDLMBLCallback: "LDLM_BL_CALLBACK", LDLMCPCallback: "LDLM_CP_CALLBACK", LDLMGLCallback: "LDLM_GL_CALLBACK",
	MGSConnect: "MGS_CONNECT", MGSDisconnect: "MGS_DISCONNECT", 252: "MGS_EXCEPTION", 253: "MGS_TARGET_REG",
	255: "MGS_SET_INFO", MGSConfigRead: "MGS_CONFIG_READ", OBDPing: "OBD_PING",
	LLOGOriginHandleCreate: "LLOG_ORIGIN_HANDLE_CREATE", LLOGOriginHandleNextBlock: "LLOG_ORIGIN_HANDLE_NEXT_BLOCK",
	LLOGOriginHandleReadHeader: "LLOG_ORIGIN_HANDLE_READ_HEADER", LLOGOriginHandlePrevBlock: "LLOG_ORIGIN_HANDLE_PREV_BLOCK",
	LLOGOriginHandleDestroy: "LLOG_ORIGIN_HANDLE_DESTROY", SEQQuery: "SEQ_QUERY", FLDQuery: "FLD_QUERY",
}

var opByName = func() map[string]uint32 {
	m := make(map[string]uint32, len(opNames))
	for k, v := range opNames {
		m[v] = k
	}
	return m
}()

// OpName returns the symbolic name of an opcode, or "opc<N>".
func OpName(opc uint32) string {
	if n, ok := opNames[opc]; ok {
		return n
	}
	return "opc" + strconv.FormatUint(uint64(opc), 10)
}

// OpByName returns the opcode with this symbolic name.
func OpByName(name string) (uint32, bool) {
	v, ok := opByName[name]
	return v, ok
}

// Portals (lustre_idl.h).
const (
	ConnmgrRequestPortal = 1
	ConnmgrReplyPortal   = 2
	OSCReplyPortal       = 4
	OSTIOPortal          = 6
	OSTCreatePortal      = 7
	OSTBulkPortal        = 8
	MDCReplyPortal       = 10
	MDSRequestPortal     = 12
	MDSIOPortal          = 13
	MDSBulkPortal        = 14
	LDLMCBRequestPortal  = 15
	LDLMCBReplyPortal    = 16
	LDLMCancelRequest    = 17
	LDLMCancelReply      = 18
	MDSSetattrPortal     = 22
	MDSReadpagePortal    = 23
	OUTPortal            = 24
	MGCReplyPortal       = 25
	MGSRequestPortal     = 26
	MGSReplyPortal       = 27
	OSTRequestPortal     = 28
	FLDRequestPortal     = 29
	SEQMetadataPortal    = 30
	SEQDataPortal        = 31
	SEQControllerPortal  = 32
	MGSBulkPortal        = 33
)

// ReplyPortal returns the portal a client listens on for replies to
// requests it sent to the request portal p, and false for portals that are
// not request portals.
func ReplyPortal(p uint32) (uint32, bool) {
	switch p {
	case ConnmgrRequestPortal:
		return ConnmgrReplyPortal, true
	case OSTIOPortal, OSTCreatePortal, OSTRequestPortal, SEQDataPortal, OUTPortal:
		return OSCReplyPortal, true
	case MDSRequestPortal, MDSIOPortal, MDSReadpagePortal, MDSSetattrPortal, FLDRequestPortal,
		SEQMetadataPortal, SEQControllerPortal:
		return MDCReplyPortal, true
	case LDLMCancelRequest:
		return LDLMCancelReply, true
	case MGSRequestPortal:
		return MGCReplyPortal, true
	}
	return 0, false
}

// Linux errno values sent as negative pb_status.
const (
	ENOENT     = 2
	EIO        = 5
	EFAULT     = 14
	EEXIST     = 17
	ENOTDIR    = 20
	EINVAL     = 22
	ENOSPC     = 28
	EBADR      = 53
	ENODATA    = 61
	EPROTO     = 71
	EOPNOTSUPP = 95
	ENOTCONN   = 107
	ETIMEDOUT  = 110
	ESTALE     = 116
	EACCES     = 13
	EPERM      = 1
	ENODEV     = 19
	EAGAIN     = 11
	EROFS      = 30
)

var errnoNames = map[string]int32{
	"EPERM": EPERM, "ENOENT": ENOENT, "EIO": EIO, "EAGAIN": EAGAIN, "EACCES": EACCES, "EFAULT": EFAULT,
	"EEXIST": EEXIST, "ENODEV": ENODEV, "ENOTDIR": ENOTDIR, "EINVAL": EINVAL, "ENOSPC": ENOSPC,
	"EBADR": EBADR, "ENODATA": ENODATA, "EPROTO": EPROTO, "EOPNOTSUPP": EOPNOTSUPP, "ENOTCONN": ENOTCONN,
	"ETIMEDOUT": ETIMEDOUT, "ESTALE": ESTALE, "EROFS": EROFS,
}

// Errno returns the positive value of a Linux errno name such as "ENOENT".
func Errno(name string) (int32, bool) {
	v, ok := errnoNames[name]
	return v, ok
}

// SortedOpcodes returns the keys of a dispatch map in ascending order.
func SortedOpcodes[V any](m map[uint32]V) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
