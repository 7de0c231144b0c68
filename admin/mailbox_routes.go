package admin

import (
	"net/http"
)

// The mailbox routes (an API that implements MailboxAdmin): the folders
// of an account, and deleting, moving and flagging one message.

// maxMailboxBody bounds the JSON body of move and flags.
const maxMailboxBody = 64 << 10

func (h *handler) mailboxRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/accounts/{address}/folders", h.folders)
	m.HandleFunc("DELETE /api/v1/accounts/{address}/messages/{id}", h.deleteMessage)
	m.HandleFunc("POST /api/v1/accounts/{address}/messages/{id}/move", h.moveMessage)
	m.HandleFunc("POST /api/v1/accounts/{address}/messages/{id}/flags", h.flagMessage)
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
