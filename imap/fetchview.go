package imap

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// onlyUIDAndFlags: the FETCH asks for nothing the client's view of the
// folder lacks.
func onlyUIDAndFlags(o *imap.FetchOptions) bool {
	return !o.Envelope && o.BodyStructure == nil && !o.InternalDate && !o.RFC822Size && !o.ModSeq &&
		len(o.BodySection) == 0 && len(o.BinarySection) == 0 && len(o.BinarySectionSize) == 0
}

// fetchFromView answers a FETCH of only UID and FLAGS from the session's
// view of the folder, which holds both, without asking the owner: a
// client's resync of a large folder (UID FETCH 1:* (FLAGS), mbsync's and
// most clients' first command after SELECT) is then one pass over memory
// instead of a read of every message's record at the owner, 500 at a
// time through the account's actor. The flags are those the view has (the
// owner's latest that the session has synced; messages already known to
// be expunged are left out, as the owner's answer leaves them out). It
// reports whether it answered.
func (ss *session) fetchFromView(w *imapserver.FetchWriter, sel *selection, seqs, uids []uint32, o *imap.FetchOptions) (bool, error) {
	if !onlyUIDAndFlags(o) {
		return false, nil
	}
	flags := make([][]string, len(uids))
	sel.mu.Lock()
	for i, u := range uids {
		f, ok := sel.flags.get(u, int(seqs[i])-1)
		if !ok {
			sel.mu.Unlock()
			return false, nil
		}
		if sel.gone[u] {
			f = nil
			uids[i] = 0
		}
		flags[i] = f
	}
	sel.mu.Unlock()
	for i, u := range uids {
		if u == 0 {
			continue
		}
		rw := w.CreateMessage(seqs[i])
		rw.WriteUID(imap.UID(u))
		if o.Flags {
			rw.WriteFlags(imapFlags(flags[i]))
		}
		if err := rw.Close(); err != nil {
			return true, err
		}
	}
	return true, nil
}
