package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/homing-mail/homing/filter"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/rules"
)

// Pipeline runs the server-wide and the cluster-wide rules, and the
// external filters they name, in this node's Enqueuer (it satisfies
// actors.ContentPipeline). Rule sets are replaced whole (atomically) when
// the administrator changes them; the cluster-wide set also arrives from
// other members (Replicator). Both are kept in DATA/rules.json.
type Pipeline struct {
	log     *slog.Logger
	tmp     string // where filters read message files
	file    string // rules.json in the data directory
	filters map[string]*filter.Filter
	// authServID is the cluster's authserv-id: rules read the results
	// of its Authentication-Results field (auth.go).
	authServID atomic.Value // string

	mu             sync.RWMutex
	server         []rules.Rule
	cluster        []rules.Rule
	clusterVersion int64
	serverSet      *rules.Set
	clusterSet     *rules.Set

	invocations atomic.Int64 // filter runs on this node
}

// storedRules is rules.json.
type storedRules struct {
	Server         []rules.Rule `json:"server"`
	Cluster        []rules.Rule `json:"cluster"`
	ClusterVersion int64        `json:"clusterVersion"`
}

// New returns the pipeline of a node whose data directory is dataDir, with
// the rule sets saved there and the filters (by name) rules may use.
func New(dataDir string, filters map[string]*filter.Filter, log *slog.Logger) (*Pipeline, error) {
	p := &Pipeline{log: log, tmp: filepath.Join(dataDir, "filter-tmp"), file: filepath.Join(dataDir, "rules.json"), filters: filters}
	if err := os.MkdirAll(p.tmp, 0o700); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p.file)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	var st storedRules
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", p.file, err)
	}
	if err := p.Set(rules.ScopeServer, st.Server, 0); err != nil {
		return nil, fmt.Errorf("%s: server rules: %w", p.file, err)
	}
	if err := p.Set(rules.ScopeCluster, st.Cluster, st.ClusterVersion); err != nil {
		return nil, fmt.Errorf("%s: cluster rules: %w", p.file, err)
	}
	return p, nil
}

// Set validates and installs a rule set (without saving it). An invalid
// rule, or one naming a filter that is not configured, is an error
// wrapping rules.ErrInvalidRule.
func (p *Pipeline) Set(scope rules.Scope, rs []rules.Rule, version int64) error {
	set, err := rules.Compile(rs, scope)
	if err != nil {
		return err
	}
	for _, r := range rs {
		for _, a := range r.Actions {
			if a.Kind == rules.ActionFilter && p.filters[a.Value] == nil {
				return &rules.ValidationError{Rule: r.Name,
					Reason: fmt.Sprintf("no filter named %q is configured (--filter NAME=COMMAND)", a.Value)}
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if scope == rules.ScopeCluster {
		p.cluster, p.clusterSet, p.clusterVersion = rs, set, version
	} else {
		p.server, p.serverSet = rs, set
	}
	return nil
}

// Save writes rules.json durably (temp file, fsync, rename).
func (p *Pipeline) Save() error {
	p.mu.RLock()
	b, err := json.MarshalIndent(storedRules{Server: p.server, Cluster: p.cluster, ClusterVersion: p.clusterVersion}, "", "  ")
	p.mu.RUnlock()
	if err != nil {
		return err
	}
	tmp := p.file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	// A failed write or fsync must stop the rename: rules.json would
	// otherwise be replaced by a file that is not on disk.
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("saving rules: %w", err)
	}
	return os.Rename(tmp, p.file)
}

// Rules returns a copy of a rule set and its version.
func (p *Pipeline) Rules(scope rules.Scope) ([]rules.Rule, int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if scope == rules.ScopeCluster {
		return append([]rules.Rule(nil), p.cluster...), p.clusterVersion
	}
	return append([]rules.Rule(nil), p.server...), 0
}

// Process implements actors.ContentPipeline: cluster-wide rules, then
// server-wide rules, then the filters they name, in order.
func (p *Pipeline) Process(ctx context.Context, msg *mail.Message) (bool, error) {
	p.mu.RLock()
	cs, ss := p.clusterSet, p.serverSet
	p.mu.RUnlock()
	if cs.Len() == 0 && ss.Len() == 0 {
		return false, nil
	}
	env := msg.Envelope
	head, err := mail.Head(msg.Body, rules.MaxHeaderBytes)
	if err != nil {
		return false, fmt.Errorf("reading the message: %w", err)
	}
	h, _ := rules.ParseHeader(head) // a malformed header still yields what it could parse
	m := rules.NewMessage(env, h)
	m.Auth = rules.AuthResults(h, p.AuthServID())
	oc, os := cs.Evaluate(m), ss.Evaluate(m)
	for _, o := range []rules.Outcome{oc, os} {
		if o.Reject != nil {
			p.log.Info("message refused by a rule", "queueID", env.ID, "rules", strings.Join(o.Matched, ","))
			return false, o.Reject
		}
	}
	out := rules.Outcome{
		Discard:    oc.Discard || os.Discard,
		Redirect:   append(oc.Redirect, os.Redirect...),
		Forward:    append(oc.Forward, os.Forward...),
		AddHeaders: append(oc.AddHeaders, os.AddHeaders...),
		Matched:    append(oc.Matched, os.Matched...),
	}
	for _, name := range append(oc.Filters, os.Filters...) {
		f := p.filters[name]
		if f == nil {
			// The rule was valid when set; the filter went away (a
			// restart without it). Keep the mail: try again later.
			p.log.Error("a rule names a filter that is not configured", "filter", name, "queueID", env.ID)
			return false, fmt.Errorf("filter %q is not configured", name)
		}
		p.invocations.Add(1)
		var rcpts []string
		for _, r := range env.Recipients {
			if !r.State.Final() {
				rcpts = append(rcpts, r.Addr)
			}
		}
		// The filter reads a file: the message is streamed into it, never
		// held whole in memory (a body stored in a file is read from it).
		body, err := msg.Body.Open()
		if err != nil {
			return false, fmt.Errorf("reading the message: %w", err)
		}
		v, err := f.CheckMessageFrom(ctx, p.tmp, env.From, rcpts, body)
		body.Close()
		switch {
		case err != nil && v.Kind != filter.KindFailure:
			return false, fmt.Errorf("filter %s: %w", name, err)
		case v.Kind == filter.KindOK:
			out.AddHeaders = append(out.AddHeaders, v.Headers...)
		case v.Kind == filter.KindDiscard:
			p.log.Info("message discarded by a filter", "filter", name, "queueID", env.ID)
			out.Discard = true
		case v.Kind == filter.KindReject:
			return false, &mail.Error{Code: 550, Status: mail.StatusRefused, Reason: "Message rejected by content filter: " + v.Text}
		case v.Kind == filter.KindError:
			return false, &mail.Error{Code: 554, Status: mail.StatusBadContent, Reason: "Message refused by content filter: " + v.Text}
		default: // KindFailure: try again later
			return false, fmt.Errorf("filter %s: temporary failure: %s (%v)", name, v.Text, err)
		}
	}
	// Recipients: the kept ones (with their DSN parameters), then those
	// that redirect and forward add.
	var orig []string
	byAddr := map[string]*mail.Recipient{}
	for _, r := range env.Recipients {
		orig = append(orig, r.Addr)
		byAddr[r.Addr] = r
	}
	var rcpts []*mail.Recipient
	for _, a := range out.Recipients(orig) {
		if r := byAddr[a]; r != nil {
			rcpts = append(rcpts, r)
		} else {
			rcpts = append(rcpts, &mail.Recipient{Addr: a, State: mail.StatePending})
		}
	}
	if len(rcpts) == 0 {
		p.log.Info("message discarded by a rule", "queueID", env.ID, "rules", strings.Join(out.Matched, ","))
		return true, nil
	}
	env.Recipients = rcpts
	if len(out.AddHeaders) > 0 {
		var b []byte
		for _, h := range out.AddHeaders {
			b = append(append(b, h...), '\r', '\n')
		}
		msg.Body = mail.Prepend(b, msg.Body)
	}
	return false, nil
}

// FilterRuns is how many times this node ran a filter.
func (p *Pipeline) FilterRuns() int64 { return p.invocations.Load() }

// Close stops the filters.
func (p *Pipeline) Close() error {
	var errs []error
	for _, f := range p.filters {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
