package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/storage"
)

// The admin API's mailbox changes (admin.MailboxAdmin): each is a
// pb.MailboxOp to the account's owner, whose account actor is the only
// writer; the answer comes once the change is durable.

var _ admin.MailboxAdmin = (*API)(nil)

func (a *API) Folders(ctx context.Context, address string) ([]admin.Folder, error) {
	r, err := a.System.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_FOLDERS, Account: address})
	if err != nil {
		return nil, a.accountError(err, address)
	}
	out := make([]admin.Folder, 0, len(r.Folders))
	for _, f := range r.Folders {
		out = append(out, admin.Folder{Name: f.Name, Messages: f.Messages, Unseen: f.Unseen,
			UIDValidity: f.UidValidity, UIDNext: f.UidNext, SpecialUse: f.SpecialUse})
	}
	return out, nil
}

func (a *API) FolderMessages(ctx context.Context, address, folder string) ([]admin.Message, error) {
	ms, err := a.System.Messages(ctx, address, folder)
	if err != nil {
		return nil, a.mailboxError(ctx, a.damaged(noFolder(err, address, folder), "the mailbox of "+address), address, "")
	}
	out := make([]admin.Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, admin.Message{ID: m.Id, Folder: m.Folder, Size: m.Size,
			Received: time.Unix(0, m.ReceivedUnixNano).UTC(), Flags: m.Flags, UID: m.Uid, From: m.From, Subject: m.Subject})
	}
	return out, nil
}

// noFolder names the folder in a no-such-folder error.
func noFolder(err error, address, folder string) error {
	if errors.Is(err, storage.ErrNoFolder) {
		return &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no folder %s in %s", folder, address), Field: "folder", Err: err}
	}
	return err
}

func (a *API) mailboxError(ctx context.Context, err error, address, id string) error {
	var ae *admin.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, storage.ErrNoFolder):
		return &admin.Error{Status: http.StatusNotFound, Message: "no such folder in " + address, Field: "folder", Err: err}
	case isNotFound(err):
		if _, aerr := a.System.GetAccount(ctx, address); aerr != nil {
			return a.accountError(aerr, address)
		}
		return &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no message %s in %s", id, address), Field: "id", Err: err}
	}
	return a.accountError(err, address)
}

func (a *API) DeleteMessage(ctx context.Context, address, id string) error {
	_, err := a.System.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_DELETE_MESSAGE, Account: address, MessageId: id})
	return a.mailboxError(ctx, err, address, id)
}

func (a *API) MoveMessage(ctx context.Context, address, id, folder string) error {
	_, err := a.System.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_MOVE_MESSAGE, Account: address, MessageId: id, Folder: folder})
	return a.mailboxError(ctx, noFolder(err, address, folder), address, id)
}

func (a *API) FlagMessage(ctx context.Context, address, id string, add, remove []string) error {
	_, err := a.System.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_FLAG_MESSAGE, Account: address, MessageId: id,
		Flags: add, RemoveFlags: remove})
	return a.mailboxError(ctx, err, address, id)
}
