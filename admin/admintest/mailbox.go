package admintest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

// The Fake's admin.MailboxAdmin, over Mailboxes: an account's folders are
// the ones every account has (INBOX and the special-use folders) and any
// other a message names, each with its messages and the unseen among them
// (no \Seen flag); moving a message changes its Folder, flagging its
// Flags, deleting removes it.

var _ admin.MailboxAdmin = (*Fake)(nil)

// defaultFolders are the folders of every account, as the store makes them.
var defaultFolders = []admin.Folder{
	{Name: "INBOX"}, {Name: "Sent", SpecialUse: `\Sent`}, {Name: "Drafts", SpecialUse: `\Drafts`},
	{Name: "Trash", SpecialUse: `\Trash`}, {Name: "Junk", SpecialUse: `\Junk`}, {Name: "Archive", SpecialUse: `\Archive`},
}

func sameFolder(a, b string) bool {
	if strings.EqualFold(a, "INBOX") {
		return strings.EqualFold(b, "INBOX")
	}
	return a == b
}

// folders is the account's folders with their counts; the caller holds
// the lock.
func (f *Fake) folders(address string) []admin.Folder {
	out := slices.Clone(defaultFolders)
	for _, m := range f.Mailboxes[address] {
		i := slices.IndexFunc(out, func(x admin.Folder) bool { return sameFolder(x.Name, m.Folder) })
		if i < 0 {
			out = append(out, admin.Folder{Name: m.Folder})
			i = len(out) - 1
		}
		out[i].Messages++
		if !slices.Contains(m.Flags, `\Seen`) {
			out[i].Unseen++
		}
	}
	for i := range out {
		out[i].UIDValidity, out[i].UIDNext = uint32(i+1), uint32(out[i].Messages+1)
	}
	return out
}

func (f *Fake) account(address string) error {
	if _, ok := f.AccountMap[address]; !ok {
		return fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	return nil
}

// Folders lists the account's folders.
func (f *Fake) Folders(ctx context.Context, address string) ([]admin.Folder, error) {
	defer f.Unlock()
	if err := f.enter("Folders", address); err != nil {
		return nil, err
	}
	if err := f.account(address); err != nil {
		return nil, err
	}
	return f.folders(address), nil
}

// FolderMessages lists the messages of one folder; no such folder is a 404.
func (f *Fake) FolderMessages(ctx context.Context, address, folder string) ([]admin.Message, error) {
	defer f.Unlock()
	if err := f.enter("FolderMessages", address, folder); err != nil {
		return nil, err
	}
	if err := f.account(address); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(f.folders(address), func(x admin.Folder) bool { return sameFolder(x.Name, folder) }) {
		return nil, &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no folder %s in %s", folder, address), Field: "folder"}
	}
	var out []admin.Message
	for _, m := range f.Mailboxes[address] {
		if sameFolder(m.Folder, folder) {
			out = append(out, m)
		}
	}
	return out, nil
}

// message finds message id of address; the caller holds the lock.
func (f *Fake) message(address, id string) (*admin.Message, error) {
	if err := f.account(address); err != nil {
		return nil, err
	}
	ms := f.Mailboxes[address]
	for i := range ms {
		if ms[i].ID == id {
			return &ms[i], nil
		}
	}
	return nil, &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no message %s in %s", id, address), Field: "id"}
}

// DeleteMessage removes a message.
func (f *Fake) DeleteMessage(ctx context.Context, address, id string) error {
	defer f.Unlock()
	if err := f.enter("DeleteMessage", address, id); err != nil {
		return err
	}
	if _, err := f.message(address, id); err != nil {
		return err
	}
	f.Mailboxes[address] = slices.DeleteFunc(f.Mailboxes[address], func(m admin.Message) bool { return m.ID == id })
	return nil
}

// MoveMessage moves a message into an existing folder.
func (f *Fake) MoveMessage(ctx context.Context, address, id, folder string) error {
	defer f.Unlock()
	if err := f.enter("MoveMessage", address, id, folder); err != nil {
		return err
	}
	m, err := f.message(address, id)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(f.folders(address), func(x admin.Folder) bool { return sameFolder(x.Name, folder) }) {
		return &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no folder %s in %s", folder, address), Field: "folder"}
	}
	m.Folder = folder
	return nil
}

// FlagMessage adds and removes flags of a message.
func (f *Fake) FlagMessage(ctx context.Context, address, id string, add, remove []string) error {
	defer f.Unlock()
	if err := f.enter("FlagMessage", address, id, add, remove); err != nil {
		return err
	}
	m, err := f.message(address, id)
	if err != nil {
		return err
	}
	for _, fl := range add {
		if !slices.Contains(m.Flags, fl) {
			m.Flags = append(m.Flags, fl)
		}
	}
	m.Flags = slices.DeleteFunc(m.Flags, func(fl string) bool { return slices.Contains(remove, fl) })
	return nil
}
