package admin

import (
	"net/http"
	"slices"
	"strconv"
)

// The mailbox routes (an API that implements MailboxAdmin): the folders
// of an account, and deleting, moving and flagging one message; and the
// message listing's query: GET .../messages?folder=NAME (one folder),
// &order=newest (newest first; oldest first without), &offset=N&limit=M
// (a page), with the number of messages before paging in X-Total-Count.

// maxMailboxBody bounds the JSON body of move and flags.
const maxMailboxBody = 64 << 10

func (h *handler) mailboxRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/accounts/{address}/folders", h.folders)
	m.HandleFunc("DELETE /api/v1/accounts/{address}/messages/{id}", h.deleteMessage)
	m.HandleFunc("POST /api/v1/accounts/{address}/messages/{id}/move", h.moveMessage)
	m.HandleFunc("POST /api/v1/accounts/{address}/messages/{id}/flags", h.flagMessage)
}

// maxPage bounds a page of the message listing.
const maxPage = 10000

// listMessages answers GET /api/v1/accounts/{address}/messages.
func (h *handler) listMessages(w http.ResponseWriter, r *http.Request, addr string) {
	q := r.URL.Query()
	offset, err := queryInt(q.Get("offset"), "offset", 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	limit, err := queryInt(q.Get("limit"), "limit", -1)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	order := q.Get("order")
	if order != "" && order != "newest" && order != "oldest" {
		h.fail(w, r, &Error{Status: http.StatusBadRequest, Message: "order is newest or oldest", Field: "order"})
		return
	}
	var ms []Message
	if folder := q.Get("folder"); folder != "" {
		mb, ok := h.api.(MailboxAdmin)
		if !ok {
			h.fail(w, r, &Error{Status: http.StatusNotFound, Message: "this node has no mailbox administration"})
			return
		}
		ms, err = mb.FolderMessages(r.Context(), addr, folder)
	} else {
		ms, err = h.api.Messages(r.Context(), addr)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if order == "newest" {
		slices.Reverse(ms)
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(len(ms)))
	ms = ms[min(offset, len(ms)):]
	if limit >= 0 {
		ms = ms[:min(limit, len(ms))]
	}
	if ms == nil {
		ms = []Message{}
	}
	writeJSON(w, http.StatusOK, ms)
}

// queryInt is a non-negative query parameter (at most maxPage for limit);
// "" is def.
func queryInt(v, name string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 0:
		return 0, &Error{Status: http.StatusBadRequest, Message: name + " is a number from 0", Field: name}
	case name == "limit" && n > maxPage:
		return 0, &Error{Status: http.StatusBadRequest, Message: "limit is at most " + strconv.Itoa(maxPage), Field: name}
	}
	return n, nil
}

func (h *handler) mailboxAdmin(w http.ResponseWriter, r *http.Request) (MailboxAdmin, string, bool) {
	mb, ok := h.api.(MailboxAdmin)
	if !ok {
		h.fail(w, r, &Error{Status: http.StatusNotFound, Message: "this node has no mailbox administration"})
		return nil, "", false
	}
	addr, err := pathAddress(r)
	if err != nil {
		h.fail(w, r, err)
		return nil, "", false
	}
	return mb, addr, true
}

func (h *handler) folders(w http.ResponseWriter, r *http.Request) {
	mb, addr, ok := h.mailboxAdmin(w, r)
	if !ok {
		return
	}
	fs, err := mb.Folders(r.Context(), addr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if fs == nil {
		fs = []Folder{}
	}
	writeJSON(w, http.StatusOK, fs)
}

func (h *handler) messageTarget(w http.ResponseWriter, r *http.Request) (MailboxAdmin, string, string, bool) {
	mb, addr, ok := h.mailboxAdmin(w, r)
	if !ok {
		return nil, "", "", false
	}
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, err)
		return nil, "", "", false
	}
	return mb, addr, id, true
}

func (h *handler) deleteMessage(w http.ResponseWriter, r *http.Request) {
	mb, addr, id, ok := h.messageTarget(w, r)
	if !ok {
		return
	}
	if err := mb.DeleteMessage(r.Context(), addr, id); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) moveMessage(w http.ResponseWriter, r *http.Request) {
	mb, addr, id, ok := h.messageTarget(w, r)
	if !ok {
		return
	}
	var req MoveMessage
	if err := decode(w, r, maxMailboxBody, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Folder == "" {
		h.fail(w, r, &Error{Status: http.StatusBadRequest, Message: "folder is required", Field: "folder"})
		return
	}
	if err := mb.MoveMessage(r.Context(), addr, id, req.Folder); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) flagMessage(w http.ResponseWriter, r *http.Request) {
	mb, addr, id, ok := h.messageTarget(w, r)
	if !ok {
		return
	}
	var req FlagMessage
	if err := decode(w, r, maxMailboxBody, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := mb.FlagMessage(r.Context(), addr, id, req.Add, req.Remove); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
