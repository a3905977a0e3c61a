package ptlrpc

import (
	"encoding/binary"
	"testing"

	"github.com/kregress/kregress/lustre/lnet"
)

// connectReq is a *_CONNECT as a client sends it: target and client
// UUIDs, its own handle, connect data, and pb_conn_cnt (1 on a client's
// first connect to the target, more after a lost connection).
func connectReq(target, client string, connCnt uint32) *Request {
	h := make([]byte, 8)
	binary.LittleEndian.PutUint64(h, 0xc11e47)
	r := &Request{Conn: &lnet.Conn{}, Msg: Msg{Bufs: [][]byte{nil, append([]byte(target), 0), append([]byte(client), 0), h,
		(&ConnectData{Flags: ConnectFlags2}).Marshal()}}}
	r.Body.ConnCnt = connCnt
	r.Body.Opc = MDSConnect
	return r
}

// TestReconnectKeepsExport: a reconnect (pb_conn_cnt > 1) finds the export
// and gets the same handle with MSG_CONNECT_RECONNECT, so a replayable
// client resends instead of being evicted; a first connect from the same
// client UUID starts over; the target's opFlags ride on every reply.
func TestReconnectKeepsExport(t *testing.T) {
	ex := NewExports(1)
	const tgt, cl = "testfs-MDT0000_UUID", "client-uuid-1"
	first := Connect(connectReq(tgt, cl, 1), ex, tgt, 0, 0, MsgConnectReplayable, nil)
	if first.Status != 0 || first.Handle == 0 || first.OpFlags != MsgConnectReplayable {
		t.Fatalf("first connect: status %d handle %#x op flags %#x", first.Status, first.Handle, first.OpFlags)
	}
	again := Connect(connectReq(tgt, cl, 2), ex, tgt, 0, 0, MsgConnectReplayable, nil)
	if again.Handle != first.Handle || again.OpFlags != MsgConnectReplayable|MsgConnectReconnect {
		t.Errorf("reconnect: handle %#x op flags %#x; want handle %#x and REPLAYABLE|RECONNECT", again.Handle, again.OpFlags, first.Handle)
	}
	if n := len(ex.All()); n != 1 {
		t.Errorf("%d exports after a reconnect, want 1", n)
	}
	fresh := Connect(connectReq(tgt, cl, 1), ex, tgt, 0, 0, MsgConnectReplayable, nil)
	if fresh.Handle == first.Handle || fresh.OpFlags&MsgConnectReconnect != 0 {
		t.Errorf("new connect of the same client: handle %#x op flags %#x; want a new export", fresh.Handle, fresh.OpFlags)
	}
	// An evicted client (export gone) reconnects to a new export, without
	// RECONNECT: it learns it was evicted.
	ex.Remove(fresh.Handle)
	after := Connect(connectReq(tgt, cl, 3), ex, tgt, 0, 0, MsgConnectReplayable, nil)
	if after.Handle == fresh.Handle || after.OpFlags&MsgConnectReconnect != 0 {
		t.Errorf("reconnect after eviction: handle %#x op flags %#x; want a new export without RECONNECT", after.Handle, after.OpFlags)
	}
	// The MGS is not replayable.
	mgs := Connect(connectReq("MGS", cl, 1), ex, "MGS", 0, 0, 0, nil)
	if mgs.OpFlags != 0 {
		t.Errorf("MGS connect op flags %#x, want 0", mgs.OpFlags)
	}
}
