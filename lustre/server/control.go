package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/kregress/kregress/lustre/faults"
	"github.com/kregress/kregress/lustre/lnet"
)

func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, code int, err error) {
		reply(w, code, map[string]string{"error": err.Error()})
	}
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, s.Stats()) })
	mux.HandleFunc("GET /exports", func(w http.ResponseWriter, r *http.Request) {
		type exp struct {
			Target string `json:"target"`
			Client string `json:"client_uuid"`
			NID    string `json:"nid"`
		}
		var out []exp
		for _, x := range s.exports.All() {
			out = append(out, exp{x.Target, x.ClientUUID, x.ClientNID.String()})
		}
		reply(w, 200, out)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.Revoke(r.URL.Query().Get("path"))
		if err != nil {
			fail(w, 404, err)
			return
		}
		reply(w, 200, map[string]int{"asts": n})
	})
	mux.HandleFunc("POST /rename", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.Rename(r.URL.Query().Get("from"), r.URL.Query().Get("to"))
		if err != nil {
			fail(w, 409, err)
			return
		}
		reply(w, 200, map[string]int{"asts": n})
	})
	mux.HandleFunc("POST /unlink", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.Unlink(r.URL.Query().Get("path"))
		if err != nil {
			fail(w, 409, err)
			return
		}
		reply(w, 200, map[string]int{"asts": n})
	})
	mux.HandleFunc("POST /evict", func(w http.ResponseWriter, r *http.Request) {
		var nid lnet.NID
		if v := r.URL.Query().Get("nid"); v != "" {
			var err error
			if nid, err = lnet.ParseNID(v); err != nil {
				fail(w, 400, err)
				return
			}
		}
		reply(w, 200, map[string]int{"evicted": s.Evict(nid)})
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, s.faults.Rules()) })
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		s.faults.Clear()
		reply(w, 200, map[string]int{"rules": 0})
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			fail(w, 400, err)
			return
		}
		rules, err := faults.Parse(data)
		if err != nil {
			fail(w, 400, err)
			return
		}
		if err := s.faults.Add(rules...); err != nil {
			fail(w, 400, fmt.Errorf("adding rules: %w", err))
			return
		}
		reply(w, 200, map[string]int{"rules": len(s.faults.Rules())})
	})
	return mux
}
