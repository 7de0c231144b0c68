package admin

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// The client of the mailbox routes (mailbox_routes.go).

// MessageQuery selects and pages a message listing: Folder "" is every
// folder; Newest lists newest first; Limit 0 is no limit.
type MessageQuery struct {
	Folder        string
	Newest        bool
	Offset, Limit int
}

func (q MessageQuery) values() string {
	v := url.Values{}
	if q.Folder != "" {
		v.Set("folder", q.Folder)
	}
	if q.Newest {
		v.Set("order", "newest")
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// QueryMessages is GET /api/v1/accounts/{address}/messages with q.
func (c *Client) QueryMessages(ctx context.Context, address string, q MessageQuery) ([]Message, error) {
	var out []Message
	err := c.call(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(address)+"/messages"+q.values(), nil, &out)
	return out, err
}

// Folders is GET /api/v1/accounts/{address}/folders.
func (c *Client) Folders(ctx context.Context, address string) ([]Folder, error) {
	var out []Folder
	err := c.call(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(address)+"/folders", nil, &out)
	return out, err
}

func messagePath(address, id string) string {
	return "/api/v1/accounts/" + url.PathEscape(address) + "/messages/" + url.PathEscape(id)
}

// DeleteMessage is DELETE /api/v1/accounts/{address}/messages/{id}.
func (c *Client) DeleteMessage(ctx context.Context, address, id string) error {
	return c.call(ctx, http.MethodDelete, messagePath(address, id), nil, nil)
}

// MoveMessage is POST /api/v1/accounts/{address}/messages/{id}/move.
func (c *Client) MoveMessage(ctx context.Context, address, id, folder string) error {
	return c.call(ctx, http.MethodPost, messagePath(address, id)+"/move", MoveMessage{Folder: folder}, nil)
}

// FlagMessage is POST /api/v1/accounts/{address}/messages/{id}/flags.
func (c *Client) FlagMessage(ctx context.Context, address, id string, add, remove []string) error {
	return c.call(ctx, http.MethodPost, messagePath(address, id)+"/flags", FlagMessage{Add: add, Remove: remove}, nil)
}
