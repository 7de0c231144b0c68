package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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

func (a *API) mailboxError(ctx context.Context, err error, address, id string) error {
	switch {
	case err == nil:
		return nil
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
	return a.mailboxError(ctx, err, address, id)
}

func (a *API) FlagMessage(ctx context.Context, address, id string, add, remove []string) error {
	_, err := a.System.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_FLAG_MESSAGE, Account: address, MessageId: id,
		Flags: add, RemoveFlags: remove})
	return a.mailboxError(ctx, err, address, id)
}
