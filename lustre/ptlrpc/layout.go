package ptlrpc

// Message layouts as data: every request format (RQF_* in lustre-release's
// lustre/ptlrpc/layout.c, listed in ../shared/lustre/RQF_formats.md) is a
// Format naming its request and reply fields (RMF_*) in buffer order. A
// request's format is found once (FormatOf, from the opcode and, for
// LDLM_ENQUEUE and MDS_REINT, the intent or reint opcode the request
// carries); handlers read fields by name (Request.Get) and build replies by
// name (Request.Reply), so a reply always has the format's buffer count,
// error replies included.

import "strconv"

// Field is a message field (RMF_*).
type Field uint8

// Message fields (RMF_*). Only the fields of the formats below.
const (
	FieldPtlrpcBody Field = iota
	FieldMGSConfigBody
	FieldMGSConfigRes
	FieldSeqOpc
	FieldSeqRange
	FieldFLDOpc
	FieldFLDMdfld
	FieldGenericData
	FieldDLMReq
	FieldDLMRep
	FieldDLMLVB
	FieldDLMGLDesc
	FieldLDLMIntent
	FieldQuotaBody
	FieldMDTBody
	FieldName
	FieldCapa1
	FieldCapa2
	FieldOBDStatfs
	FieldMDTMD
	FieldDefaultMDTMD
	FieldACL
	FieldFileSecctxName
	FieldFileSecctx
	FieldFileEncctx
	FieldSELinuxPol
	FieldEAData
	FieldEAVals
	FieldEAValsLens
	FieldTgtUUID
	FieldClUUID
	FieldConn
	FieldConnectData
	FieldGetinfoKey
	FieldGetinfoVal
	FieldRecReint
	FieldLayoutIntent
	FieldNiobufInline
	FieldMDTEpoch
	FieldLogCookies
	FieldLlogdBody
	FieldLlogLogHdr
	FieldOSTBody
	FieldOBDIoobj
	FieldNiobufRemote
	FieldShortIO
	FieldRCS
	FieldSymTgt
	numFields
)

// fieldInfo gives each field its RMF name and the size a server packs for
// it in a reply when it has nothing to put there: the structure's size
// for fixed-size fields, 0 for variable-size or shrinkable ones (names,
// EA data, LVBs, MDT_MD, ACLs, log cookies, the empty capabilities).
var fieldInfo = [numFields]struct {
	name string
	size int
}{
	FieldPtlrpcBody:     {"PTLRPC_BODY", BodySize},
	FieldMGSConfigBody:  {"MGS_CONFIG_BODY", 80},
	FieldMGSConfigRes:   {"MGS_CONFIG_RES", 16},
	FieldSeqOpc:         {"SEQ_OPC", 4},
	FieldSeqRange:       {"SEQ_RANGE", 24},
	FieldFLDOpc:         {"FLD_OPC", 4},
	FieldFLDMdfld:       {"FLD_MDFLD", 24},
	FieldGenericData:    {"GENERIC_DATA", 0},
	FieldDLMReq:         {"DLM_REQ", 104},
	FieldDLMRep:         {"DLM_REP", 112},
	FieldDLMLVB:         {"DLM_LVB", 0},
	FieldDLMGLDesc:      {"DLM_GL_DESC", 0},
	FieldLDLMIntent:     {"LDLM_INTENT", 8},
	FieldQuotaBody:      {"QUOTA_BODY", 64},
	FieldMDTBody:        {"MDT_BODY", 216},
	FieldName:           {"NAME", 0},
	FieldCapa1:          {"CAPA1", 0},
	FieldCapa2:          {"CAPA2", 0},
	FieldOBDStatfs:      {"OBD_STATFS", 144},
	FieldMDTMD:          {"MDT_MD", 0},
	FieldDefaultMDTMD:   {"DEFAULT_MDT_MD", 0},
	FieldACL:            {"ACL", 0},
	FieldFileSecctxName: {"FILE_SECCTX_NAME", 0},
	FieldFileSecctx:     {"FILE_SECCTX", 0},
	FieldFileEncctx:     {"FILE_ENCCTX", 0},
	FieldSELinuxPol:     {"SELINUX_POL", 0},
	FieldEAData:         {"EADATA", 0},
	FieldEAVals:         {"EAVALS", 0},
	FieldEAValsLens:     {"EAVALS_LENS", 0},
	FieldTgtUUID:        {"TGTUUID", 40},
	FieldClUUID:         {"CLUUID", 40},
	FieldConn:           {"CONN", 8},
	FieldConnectData:    {"CONNECT_DATA", ConnectDataSize},
	FieldGetinfoKey:     {"GETINFO_KEY", 0},
	FieldGetinfoVal:     {"GETINFO_VAL", 0},
	FieldRecReint:       {"REC_REINT", 136},
	FieldLayoutIntent:   {"LAYOUT_INTENT", 0},
	FieldNiobufInline:   {"NIOBUF_INLINE", 0},
	FieldMDTEpoch:       {"MDT_EPOCH", 24},
	FieldLogCookies:     {"LOGCOOKIES", 0},
	FieldLlogdBody:      {"LLOGD_BODY", 48},
	FieldLlogLogHdr:     {"LLOG_LOG_HDR", 8192},
	FieldOSTBody:        {"OST_BODY", 208},
	FieldOBDIoobj:       {"OBD_IOOBJ", 0},
	FieldNiobufRemote:   {"NIOBUF_REMOTE", 0},
	FieldShortIO:        {"SHORT_IO", 0},
	FieldRCS:            {"RCS", 0},
	FieldSymTgt:         {"SYMTGT", 0},
}

// String is the field's RMF name without the prefix.
func (f Field) String() string {
	if f < numFields {
		return fieldInfo[f].name
	}
	return "field" + strconv.Itoa(int(f))
}

// EmptySize is the size of the field in a reply that has nothing to say
// in it: the structure size of a fixed-size field, else 0.
func (f Field) EmptySize() int { return fieldInfo[f].size }

// Format is a request format (RQF_*): the fields of the request and of the
// reply, in buffer order; buffer 0 is always PTLRPC_BODY.
type Format struct {
	Name string
	Req  []Field
	Rep  []Field
}

func index(fields []Field, f Field) int {
	for i, x := range fields {
		if x == f {
			return i
		}
	}
	return -1
}

// ReqIndex is the buffer index of f in the request, or -1.
func (f *Format) ReqIndex(fl Field) int { return index(f.Req, fl) }

// RepIndex is the buffer index of f in the reply, or -1.
func (f *Format) RepIndex(fl Field) int { return index(f.Rep, fl) }

// Has reports whether the request carries field fl.
func (f *Format) Has(fl Field) bool { return f != nil && f.ReqIndex(fl) >= 0 }

var zeros [8192]byte

// Value is a reply field's content.
type Value struct {
	Field Field
	Data  []byte
}

// Set is a Value: field f holds b.
func Set(f Field, b []byte) Value { return Value{f, b} }

// ReplyBufs returns the reply buffers after PTLRPC_BODY: the given values
// where set, every other field empty (EmptySize zero bytes). It panics if
// a value names a field the reply does not have: that is a bug in the
// handler, not bad input.
func (f *Format) ReplyBufs(vals ...Value) [][]byte {
	bufs := make([][]byte, len(f.Rep)-1)
	for i, fl := range f.Rep[1:] {
		if n := fl.EmptySize(); n > 0 {
			bufs[i] = zeros[:n:n]
		}
	}
	for _, v := range vals {
		i := f.RepIndex(v.Field)
		if i < 1 {
			panic("ptlrpc: reply of " + f.Name + " has no field " + v.Field.String())
		}
		bufs[i-1] = v.Data
	}
	return bufs
}

// Short aliases for the format tables.
const (
	fBody   = FieldPtlrpcBody
	fDLMReq = FieldDLMReq
	fDLMRep = FieldDLMRep
	fLVB    = FieldDLMLVB
	fIntent = FieldLDLMIntent
	fMDT    = FieldMDTBody
	fName   = FieldName
	fCapa1  = FieldCapa1
	fCapa2  = FieldCapa2
	fMD     = FieldMDTMD
	fACL    = FieldACL
	fRec    = FieldRecReint
	fEA     = FieldEAData
	fSecNm  = FieldFileSecctxName
	fSec    = FieldFileSecctx
	fEnc    = FieldFileEncctx
	fSePol  = FieldSELinuxPol
	fLlogd  = FieldLlogdBody
)

func fields(f ...Field) []Field { return f }

// Request formats (lustre-release HEAD, v2_17_57-62-gc881f8ebcb). Older
// clients send fewer trailing request buffers (Request.Get returns nil
// for them) and ignore trailing empty reply buffers.
var (
	FmtOBDPing = &Format{"OBD_PING", fields(fBody), fields(fBody)}
	// FmtConnect is every target's connect: RQF_MDS_CONNECT, RQF_OST_CONNECT
	// and the servers' RQF_CONNECT have the same fields.
	FmtConnect       = &Format{"MDS_CONNECT", fields(fBody, FieldTgtUUID, FieldClUUID, FieldConn, FieldConnectData, fSePol), fields(fBody, FieldConnectData)}
	FmtMDSDisconnect = &Format{"MDS_DISCONNECT", fields(fBody), fields(fBody)}
	FmtOSTDisconnect = &Format{"OST_DISCONNECT", fields(fBody), fields(fBody)}
	FmtMGSConfigRead = &Format{"MGS_CONFIG_READ", fields(fBody, FieldMGSConfigBody), fields(fBody, FieldMGSConfigRes)}
	FmtSeqQuery      = &Format{"SEQ_QUERY", fields(fBody, FieldSeqOpc, FieldSeqRange), fields(fBody, FieldSeqRange)}
	FmtFLDQuery      = &Format{"FLD_QUERY", fields(fBody, FieldFLDOpc, FieldFLDMdfld), fields(fBody, FieldFLDMdfld)}
	FmtMDSGetRoot    = &Format{"MDS_GET_ROOT", fields(fBody, fMDT, fName), fields(fBody, fMDT, fCapa1)}
	FmtMDSStatfs     = &Format{"MDS_STATFS", fields(fBody), fields(fBody, FieldOBDStatfs)}
	FmtMDSSync       = &Format{"MDS_SYNC", fields(fBody, fMDT, fCapa1), fields(fBody, fMDT)}
	FmtMDSGetattr    = &Format{"MDS_GETATTR", fields(fBody, fMDT, fCapa1),
		fields(fBody, fMDT, fMD, fACL, fCapa1, fCapa2, fEnc)}
	FmtMDSGetattrName = &Format{"MDS_GETATTR_NAME", fields(fBody, fMDT, fCapa1, fName),
		fields(fBody, fMDT, fMD, fACL, fCapa1, fCapa2, fEnc)}
	FmtMDSGetxattr = &Format{"MDS_GETXATTR", fields(fBody, fMDT, fCapa1, fName, fEA, fSePol), fields(fBody, fMDT, fEA)}
	FmtMDSGetInfo  = &Format{"MDS_GET_INFO", fields(fBody, FieldGetinfoKey, FieldGetinfoVal), fields(fBody, FieldGetinfoVal)}
	FmtMDSClose    = &Format{"MDS_CLOSE", fields(fBody, FieldMDTEpoch, fRec, fCapa1),
		fields(fBody, fMDT, fMD, FieldLogCookies, fCapa1, fCapa2)}
	FmtMDSReadpage = &Format{"MDS_READPAGE", fields(fBody, fMDT, fCapa1), fields(fBody, fMDT)}

	FmtMDSReint         = &Format{"MDS_REINT", fields(fBody, fRec), fields(fBody, fMDT)}
	FmtMDSReintSetattr  = &Format{"MDS_REINT_SETATTR", fields(fBody, fRec, fCapa1, FieldMDTEpoch, fEA, FieldLogCookies, fDLMReq), fields(fBody, fMDT, fMD, fACL, fCapa1, fCapa2)}
	FmtMDSReintCreate   = &Format{"MDS_REINT_CREATE", fields(fBody, fRec, fCapa1, fName), fields(fBody, fMDT, fCapa1)}
	FmtMDSReintLink     = &Format{"MDS_REINT_LINK", fields(fBody, fRec, fCapa1, fCapa2, fName, fDLMReq, fSePol), fields(fBody, fMDT)}
	FmtMDSReintUnlink   = &Format{"MDS_REINT_UNLINK", fields(fBody, fRec, fCapa1, fName, fDLMReq, fSePol), fields(fBody, fMDT, fMD, FieldLogCookies, fCapa1, fCapa2)}
	FmtMDSReintRename   = &Format{"MDS_REINT_RENAME", fields(fBody, fRec, fCapa1, fCapa2, fName, FieldSymTgt, fDLMReq, fSePol), fields(fBody, fMDT, fMD, FieldLogCookies, fCapa1, fCapa2)}
	FmtMDSReintOpen     = &Format{"MDS_REINT_OPEN", fields(fBody, fRec, fCapa1, fCapa2, fName, fEA, fSecNm, fSec, fSePol, fEnc), fields(fBody, fMDT, fMD, fACL, fCapa1, fCapa2)}
	FmtMDSReintSetxattr = &Format{"MDS_REINT_SETXATTR", fields(fBody, fRec, fCapa1, fName, fEA, fDLMReq, fSePol), fields(fBody, fMDT)}

	FmtLDLMEnqueue      = &Format{"LDLM_ENQUEUE", fields(fBody, fDLMReq), fields(fBody, fDLMRep, fLVB)}
	FmtLDLMCancel       = &Format{"LDLM_CANCEL", fields(fBody, fDLMReq), fields(fBody)}
	FmtLDLMBLCallback   = &Format{"LDLM_BL_CALLBACK", fields(fBody, fDLMReq), fields(fBody)}
	FmtLDLMIntentBasic  = &Format{"LDLM_INTENT_BASIC", fields(fBody, fDLMReq, fIntent), fields(fBody, fDLMRep, fLVB)}
	FmtLDLMIntent       = &Format{"LDLM_INTENT", fields(fBody, fDLMReq, fIntent, fRec), fields(fBody, fDLMRep, fMDT, fMD, fACL)}
	FmtLDLMIntentQuota  = &Format{"LDLM_INTENT_QUOTA", fields(fBody, fDLMReq, fIntent, FieldQuotaBody), fields(fBody, fDLMRep, fLVB, FieldQuotaBody)}
	FmtLDLMIntentLayout = &Format{"LDLM_INTENT_LAYOUT", fields(fBody, fDLMReq, fIntent, FieldLayoutIntent, fEA),
		fields(fBody, fDLMRep, fLVB)}
	FmtLDLMIntentGetattr = &Format{"LDLM_INTENT_GETATTR", fields(fBody, fDLMReq, fIntent, fMDT, fCapa1, fName, fSecNm),
		fields(fBody, fDLMRep, fMDT, fMD, fACL, fCapa1, fSec, FieldDefaultMDTMD, fEnc)}
	FmtLDLMIntentOpen = &Format{"LDLM_INTENT_OPEN", fields(fBody, fDLMReq, fIntent, fRec, fCapa1, fCapa2, fName, fEA, fSecNm, fSec, fSePol, fEnc),
		fields(fBody, fDLMRep, fMDT, fMD, fACL, fCapa1, fCapa2, FieldNiobufInline, fSec, fEnc, FieldDefaultMDTMD)}
	FmtLDLMIntentGetxattr = &Format{"LDLM_INTENT_GETXATTR", fields(fBody, fDLMReq, fIntent, fMDT, fCapa1, fSePol),
		fields(fBody, fDLMRep, fMDT, fMD, fACL, fEA, FieldEAVals, FieldEAValsLens)}

	FmtLlogCreate     = &Format{"LLOG_ORIGIN_HANDLE_CREATE", fields(fBody, fLlogd, fName, fMDT), fields(fBody, fLlogd)}
	FmtLlogNextBlock  = &Format{"LLOG_ORIGIN_HANDLE_NEXT_BLOCK", fields(fBody, fLlogd), fields(fBody, fLlogd, fEA)}
	FmtLlogPrevBlock  = &Format{"LLOG_ORIGIN_HANDLE_PREV_BLOCK", fields(fBody, fLlogd), fields(fBody, fLlogd, fEA)}
	FmtLlogReadHeader = &Format{"LLOG_ORIGIN_HANDLE_READ_HEADER", fields(fBody, fLlogd), fields(fBody, FieldLlogLogHdr)}

	FmtOSTGetattr = &Format{"OST_GETATTR", fields(fBody, FieldOSTBody, fCapa1), fields(fBody, FieldOSTBody)}
	FmtOSTStatfs  = &Format{"OST_STATFS", fields(fBody), fields(fBody, FieldOBDStatfs)}
)

// Intent opcodes (ldlm_intent.opc). An LDLM_ENQUEUE with more than two
// buffers carries one in buffer 2, and it chooses the request's format.
const (
	ITOpen       = 0x1
	ITCreat      = 0x2
	ITGetattr    = 0x8
	ITLookup     = 0x10
	ITGetxattr   = 0x80
	ITLayout     = 0x400
	ITQuotaDQACQ = 0x800
	ITQuotaConn  = 0x1000
	ITGlimpse    = 0x4000
	ITBRW        = 0x8000
)

// intentFormats maps an intent opcode to its format, as the MDT's intent
// policy does (an open is an LDLM_INTENT extended by its REINT_OPEN
// record to LDLM_INTENT_OPEN). Other intent opcodes keep
// LDLM_INTENT_BASIC.
var intentFormats = map[uint64]*Format{
	ITOpen:           FmtLDLMIntentOpen,
	ITCreat:          FmtLDLMIntentOpen,
	ITOpen | ITCreat: FmtLDLMIntentOpen,
	ITGetattr:        FmtLDLMIntentGetattr,
	ITLookup:         FmtLDLMIntentGetattr,
	ITGetxattr:       FmtLDLMIntentGetxattr,
	ITLayout:         FmtLDLMIntentLayout,
	ITGlimpse:        FmtLDLMIntent,
	ITBRW:            FmtLDLMIntent,
	ITQuotaDQACQ:     FmtLDLMIntentQuota,
	ITQuotaConn:      FmtLDLMIntentQuota,
}

// Reint opcodes (mdt_rec_reint.rr_opcode, the first u32 of REC_REINT).
const (
	ReintSetattr  = 1
	ReintCreate   = 2
	ReintLink     = 3
	ReintUnlink   = 4
	ReintRename   = 5
	ReintOpen     = 6
	ReintSetxattr = 7
	ReintRmentry  = 8
)

var reintFormats = map[uint32]*Format{
	ReintSetattr: FmtMDSReintSetattr, ReintCreate: FmtMDSReintCreate, ReintLink: FmtMDSReintLink,
	ReintUnlink: FmtMDSReintUnlink, ReintRename: FmtMDSReintRename, ReintOpen: FmtMDSReintOpen,
	ReintSetxattr: FmtMDSReintSetxattr, ReintRmentry: FmtMDSReintUnlink,
}

// opFormats is the format of each opcode the server understands, before
// any intent or reint opcode refines it.
var opFormats = map[uint32]*Format{
	OBDPing:    FmtOBDPing,
	MGSConnect: FmtConnect, MDSConnect: FmtConnect, OSTConnect: FmtConnect,
	MGSDisconnect: FmtMDSDisconnect, MDSDisconnect: FmtMDSDisconnect, OSTDisconnect: FmtOSTDisconnect,
	MGSConfigRead: FmtMGSConfigRead,
	SEQQuery:      FmtSeqQuery, FLDQuery: FmtFLDQuery,
	MDSGetRoot: FmtMDSGetRoot, MDSStatfs: FmtMDSStatfs, MDSSync: FmtMDSSync,
	MDSGetattr: FmtMDSGetattr, MDSGetattrName: FmtMDSGetattrName, MDSGetxattr: FmtMDSGetxattr,
	MDSClose: FmtMDSClose, MDSReadpage: FmtMDSReadpage, MDSReint: FmtMDSReint,
	LDLMEnqueue: FmtLDLMEnqueue, LDLMCancel: FmtLDLMCancel, LDLMBLCallback: FmtLDLMBLCallback,
	LLOGOriginHandleCreate: FmtLlogCreate, LLOGOriginHandleNextBlock: FmtLlogNextBlock,
	LLOGOriginHandlePrevBlock: FmtLlogPrevBlock, LLOGOriginHandleReadHeader: FmtLlogReadHeader,
	OSTGetattr: FmtOSTGetattr, OSTStatfs: FmtOSTStatfs,
}

// dlmIntentOff is the buffer of the intent in an LDLM_ENQUEUE that has one.
const dlmIntentOff = 2

// FormatOf returns the format of a request with opcode opc and message m,
// or nil for an opcode without one: LDLM_ENQUEUE is plain with two
// buffers, else its intent chooses; MDS_REINT's record opcode chooses.
func FormatOf(opc uint32, m *Msg) *Format {
	f := opFormats[opc]
	switch opc {
	case LDLMEnqueue:
		if len(m.Bufs) <= dlmIntentOff {
			return f
		}
		if b := m.Buf(dlmIntentOff); len(b) >= 8 {
			if g, ok := intentFormats[le.Uint64(b)]; ok {
				return g
			}
		}
		return FmtLDLMIntentBasic
	case MDSReint:
		if b := m.Buf(FmtMDSReint.ReqIndex(FieldRecReint)); len(b) >= 4 {
			if g, ok := reintFormats[le.Uint32(b)]; ok {
				return g
			}
		}
	}
	return f
}

// Formats lists every format, for tests and documentation.
func Formats() []*Format {
	return []*Format{FmtOBDPing, FmtConnect, FmtMDSDisconnect, FmtOSTDisconnect, FmtMGSConfigRead, FmtSeqQuery,
		FmtFLDQuery, FmtMDSGetRoot, FmtMDSStatfs, FmtMDSSync, FmtMDSGetattr, FmtMDSGetattrName, FmtMDSGetxattr,
		FmtMDSGetInfo, FmtMDSClose, FmtMDSReadpage, FmtMDSReint, FmtMDSReintSetattr, FmtMDSReintCreate,
		FmtMDSReintLink, FmtMDSReintUnlink, FmtMDSReintRename, FmtMDSReintOpen, FmtMDSReintSetxattr,
		FmtLDLMEnqueue, FmtLDLMCancel, FmtLDLMBLCallback, FmtLDLMIntentBasic, FmtLDLMIntent, FmtLDLMIntentQuota,
		FmtLDLMIntentLayout, FmtLDLMIntentGetattr, FmtLDLMIntentOpen, FmtLDLMIntentGetxattr, FmtLlogCreate,
		FmtLlogNextBlock, FmtLlogPrevBlock, FmtLlogReadHeader, FmtOSTGetattr, FmtOSTStatfs}
}

// IntentOpcodes lists the intent opcodes that choose a format of their
// own, for tests.
func IntentOpcodes() []uint64 {
	out := make([]uint64, 0, len(intentFormats))
	for k := range intentFormats {
		out = append(out, k)
	}
	return out
}
