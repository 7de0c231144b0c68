package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client limits on what it reads from a server.
const (
	maxJSONResponse  = 64 << 20  // a listing of a large queue or mailbox
	maxRawResponse   = 256 << 20 // one stored message
	maxErrorResponse = 64 << 10
)

// Client is a typed client for the admin HTTP API; its methods mirror the
// API interface one to one (a *Client is itself an API), so `homing ctl`,
// the load generator and tests speak the same contract as the node.
//
// Errors the server answers come back as *Error{Status, Message}; transport
// failures are other errors. A Client is safe for concurrent use once its
// fields are set; do not change them while requests are in flight.
type Client struct {
	// BaseURL is the scheme and authority of the admin endpoint, e.g.
	// "http://127.0.0.1:8025", without a trailing slash.
	BaseURL string
	// Token is sent as "Authorization: Bearer <Token>" when not empty
	// (except on Submit, which uses basic auth).
	Token string
	// HTTP does the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Client has every method of API with the same signature, except Submit:
// the client address API.Submit takes is, over HTTP, the address of the
// connection, which the caller does not choose.

// NewClient returns a client for the admin endpoint at baseURL, which is a
// URL ("http://127.0.0.1:8025") or a bare host:port ("127.0.0.1:8025",
// meaning http). Requests time out after two minutes unless their context
// ends sooner.
func NewClient(baseURL, token string) *Client {
	base := strings.TrimSpace(baseURL)
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{
		BaseURL: strings.TrimRight(base, "/"),
		Token:   token,
		HTTP:    &http.Client{Timeout: 2 * time.Minute},
	}
}

// Cluster is GET /api/v1/cluster.
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	var out Cluster
	err := c.call(ctx, http.MethodGet, "/api/v1/cluster", nil, &out)
	return out, err
}

// CreateAccount is POST /api/v1/accounts.
func (c *Client) CreateAccount(ctx context.Context, req CreateAccount) (Account, error) {
	var out Account
	err := c.call(ctx, http.MethodPost, "/api/v1/accounts", req, &out)
	return out, err
}

// Accounts is GET /api/v1/accounts.
func (c *Client) Accounts(ctx context.Context) ([]Account, error) {
	var out []Account
	err := c.call(ctx, http.MethodGet, "/api/v1/accounts", nil, &out)
	return out, err
}

// Account is GET /api/v1/accounts/{address}.
func (c *Client) Account(ctx context.Context, address string) (Account, error) {
	var out Account
	err := c.call(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(address), nil, &out)
	return out, err
}

// DeleteAccount is DELETE /api/v1/accounts/{address}.
func (c *Client) DeleteAccount(ctx context.Context, address string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/accounts/"+url.PathEscape(address), nil, nil)
}

// Messages is GET /api/v1/accounts/{address}/messages.
func (c *Client) Messages(ctx context.Context, address string) ([]Message, error) {
	var out []Message
	err := c.call(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(address)+"/messages", nil, &out)
	return out, err
}

// RawMessage is GET /api/v1/accounts/{address}/messages/{id}/raw: the
// stored RFC 5322 bytes.
func (c *Client) RawMessage(ctx context.Context, address, id string) ([]byte, error) {
	p := "/api/v1/accounts/" + url.PathEscape(address) + "/messages/" + url.PathEscape(id) + "/raw"
	resp, err := c.send(ctx, http.MethodGet, p, nil, c.bearer)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRawResponse+1))
	if err != nil {
		return nil, fmt.Errorf("admin: GET %s: %w", p, err)
	}
	if len(raw) > maxRawResponse {
		return nil, fmt.Errorf("admin: GET %s: message larger than %d bytes", p, maxRawResponse)
	}
	return raw, nil
}

// Queue is GET /api/v1/queue.
func (c *Client) Queue(ctx context.Context) ([]QueueEntry, error) {
	var out []QueueEntry
	err := c.call(ctx, http.MethodGet, "/api/v1/queue", nil, &out)
	return out, err
}

// QueueEntry is GET /api/v1/queue/{id}.
func (c *Client) QueueEntry(ctx context.Context, id string) (QueueEntry, error) {
	var out QueueEntry
	err := c.call(ctx, http.MethodGet, "/api/v1/queue/"+url.PathEscape(id), nil, &out)
	return out, err
}

// QueueAction is POST /api/v1/queue/{id}/retry|hold|release, or
// DELETE /api/v1/queue/{id} for "delete". Another action is an *Error
// with status 400, not sent to the server.
func (c *Client) QueueAction(ctx context.Context, id, action string) error {
	p := "/api/v1/queue/" + url.PathEscape(id)
	switch action {
	case ActionDelete:
		return c.call(ctx, http.MethodDelete, p, nil, nil)
	case ActionRetry, ActionHold, ActionRelease:
		return c.call(ctx, http.MethodPost, p+"/"+action, nil, nil)
	}
	return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("unknown queue action %q (retry, hold, release or delete)", action)}
}

// Settings is GET /api/v1/settings.
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	var out Settings
	err := c.call(ctx, http.MethodGet, "/api/v1/settings", nil, &out)
	return out, err
}

// UpdateSettings is PUT /api/v1/settings; it returns the settings now in
// force.
func (c *Client) UpdateSettings(ctx context.Context, s SettingsUpdate) (Settings, error) {
	var out Settings
	err := c.call(ctx, http.MethodPut, "/api/v1/settings", s, &out)
	return out, err
}

// Actors is GET /api/v1/actors: counts per actor kind.
func (c *Client) Actors(ctx context.Context) (map[string]int, error) {
	var out map[string]int
	err := c.call(ctx, http.MethodGet, "/api/v1/actors", nil, &out)
	return out, err
}

// Rules is GET /api/v1/rules/{scope}.
func (c *Client) Rules(ctx context.Context, scope string) (RuleSet, error) {
	var out RuleSet
	err := c.call(ctx, http.MethodGet, "/api/v1/rules/"+url.PathEscape(scope), nil, &out)
	return out, err
}

// SetRules is PUT /api/v1/rules/{scope} with the rule array.
func (c *Client) SetRules(ctx context.Context, scope string, rules json.RawMessage) (RuleSet, error) {
	var out RuleSet
	err := c.call(ctx, http.MethodPut, "/api/v1/rules/"+url.PathEscape(scope), rules, &out)
	return out, err
}

// AccountRules is GET /api/v1/accounts/{address}/rules.
func (c *Client) AccountRules(ctx context.Context, address string) (RuleSet, error) {
	var out RuleSet
	err := c.call(ctx, http.MethodGet, "/api/v1/accounts/"+url.PathEscape(address)+"/rules", nil, &out)
	return out, err
}

// SetAccountRules is PUT /api/v1/accounts/{address}/rules.
func (c *Client) SetAccountRules(ctx context.Context, address string, rules json.RawMessage) (RuleSet, error) {
	var out RuleSet
	err := c.call(ctx, http.MethodPut, "/api/v1/accounts/"+url.PathEscape(address)+"/rules", rules, &out)
	return out, err
}

// Nodes is GET /api/v1/nodes.
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	var out []NodeInfo
	err := c.call(ctx, http.MethodGet, "/api/v1/nodes", nil, &out)
	return out, err
}

// ClusterQueue is GET /api/v1/queue?scope=cluster.
func (c *Client) ClusterQueue(ctx context.Context) ([]QueueEntry, error) {
	var out []QueueEntry
	err := c.call(ctx, http.MethodGet, "/api/v1/queue?scope=cluster", nil, &out)
	return out, err
}

// Journey is GET /api/v1/journey/{id}.
func (c *Client) Journey(ctx context.Context, id string) ([]JourneyEvent, error) {
	var out Journey
	err := c.call(ctx, http.MethodGet, "/api/v1/journey/"+url.PathEscape(id), nil, &out)
	return out.Steps, err
}

// NodeQueueAction is a queue action with ?node=.
func (c *Client) NodeQueueAction(ctx context.Context, node, id, action string) error {
	p, q := "/api/v1/queue/"+url.PathEscape(id), "?node="+url.QueryEscape(node)
	switch action {
	case ActionDelete:
		return c.call(ctx, http.MethodDelete, p+q, nil, nil)
	case ActionRetry, ActionHold, ActionRelease:
		return c.call(ctx, http.MethodPost, p+"/"+action+q, nil, nil)
	}
	return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("unknown queue action %q (retry, hold, release or delete)", action)}
}

// NodeUpdateSettings is PUT /api/v1/settings?node=.
func (c *Client) NodeUpdateSettings(ctx context.Context, node string, u SettingsUpdate) (Settings, error) {
	var out Settings
	err := c.call(ctx, http.MethodPut, "/api/v1/settings?node="+url.QueryEscape(node), u, &out)
	return out, err
}

// Partitions is GET /api/v1/partitions.
func (c *Client) Partitions(ctx context.Context) ([]PartitionStatus, error) {
	var out []PartitionStatus
	err := c.call(ctx, http.MethodGet, "/api/v1/partitions", nil, &out)
	return out, err
}

// Stats is GET /api/v1/stats.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	err := c.call(ctx, http.MethodGet, "/api/v1/stats", nil, &out)
	return out, err
}

// Submit is POST /api/v1/submit as the account user (HTTP basic auth with
// its password); it returns the queue id. Wrong credentials are an *Error
// with status 401.
func (c *Client) Submit(ctx context.Context, user, password string, to []string, raw []byte) (string, error) {
	var out SubmitResponse
	auth := func(r *http.Request) { r.SetBasicAuth(user, password) }
	resp, err := c.send(ctx, http.MethodPost, pathSubmit, SubmitRequest{To: to, Raw: string(raw)}, auth)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := decodeResponse(resp, pathSubmit, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Readiness is GET /readyz: the node's answer whether it is ready (200)
// or not (503), with its checks (their detail only when the client may
// see it: on loopback, or with the token). Another answer is an *Error.
func (c *Client) Readiness(ctx context.Context) (Readiness, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+pathReadyz, nil)
	if err != nil {
		return Readiness{}, fmt.Errorf("admin: GET %s: %w", pathReadyz, err)
	}
	c.bearer(req)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Readiness{}, fmt.Errorf("admin: GET %s: %w", pathReadyz, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return Readiness{}, responseError(resp)
	}
	var body healthBody
	if err := decodeResponse(resp, pathReadyz, &body); err != nil {
		return Readiness{}, err
	}
	if body.Checks == nil {
		body.Checks = []Check{}
	}
	return Readiness{Ready: resp.StatusCode == http.StatusOK && body.Status == "ready", Checks: body.Checks}, nil
}

// Healthy is GET /healthz: nil when the node's process answers 200.
func (c *Client) Healthy(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, pathHealthz, nil, nil)
}

// call sends a request with the bearer token and decodes a JSON answer
// into out (nil: the body is discarded).
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body, c.bearer)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorResponse))
		return nil
	}
	return decodeResponse(resp, path, out)
}

func (c *Client) bearer(r *http.Request) {
	if c.Token != "" {
		r.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

// send does one request; a non-2xx answer is returned as *Error and the
// response is closed. On success the caller closes the body.
func (c *Client) send(ctx context.Context, method, path string, body any, auth func(*http.Request)) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("admin: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	auth(req)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// responseError reads the {"error": ...} body of a failed answer.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorResponse))
	var eb errorBody
	msg := ""
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	} else if s := strings.TrimSpace(string(b)); s != "" && !strings.Contains(resp.Header.Get("Content-Type"), "html") {
		msg = s
	} else {
		msg = strings.ToLower(http.StatusText(resp.StatusCode))
	}
	out := &Error{Status: resp.StatusCode, Message: msg, Field: eb.Field}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 &&
		(resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) {
		out.RetryAfter = time.Duration(s) * time.Second
	}
	return out
}

func decodeResponse(resp *http.Response, path string, out any) error {
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxJSONResponse))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("admin: %s: decoding the answer: %w", path, err)
	}
	return nil
}
