package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"time"
)

// API is what the admin endpoint needs from a node. Every method must be
// safe for concurrent use. Errors wrapping mail.ErrNotFound become 404,
// mail.ErrExists 409, *Error its own status, anything else 500 with a
// generic body (the detail goes to the log, not to the client).
type API interface {
	Cluster(ctx context.Context) (Cluster, error)

	CreateAccount(ctx context.Context, req CreateAccount) (Account, error)
	Accounts(ctx context.Context) ([]Account, error)
	Account(ctx context.Context, address string) (Account, error)
	DeleteAccount(ctx context.Context, address string) error
	Messages(ctx context.Context, address string) ([]Message, error)
	RawMessage(ctx context.Context, address, id string) ([]byte, error)
	// An API that also implements RawMessageOpener has the raw message
	// streamed instead.

	Queue(ctx context.Context) ([]QueueEntry, error)
	QueueEntry(ctx context.Context, id string) (QueueEntry, error)
	// QueueAction performs "retry", "hold", "release" or "delete".
	QueueAction(ctx context.Context, id, action string) error

	Settings(ctx context.Context) (Settings, error)
	// UpdateSettings applies the fields that are set and returns the
	// settings now in force.
	UpdateSettings(ctx context.Context, s SettingsUpdate) (Settings, error)

	// Nodes reports every member (this node alone on a single node): its
	// actors, queue, partitions and counters; a member that cannot be
	// asked is listed with Error set.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// ClusterQueue lists the queues of every member (QueueEntry.Node says
	// whose).
	ClusterQueue(ctx context.Context) ([]QueueEntry, error)
	// Journey is the path of one message across the cluster, by queue id.
	Journey(ctx context.Context, id string) ([]JourneyEvent, error)
	// FindMessages finds messages in the journals of every member: by
	// Message-ID, sender, recipient and time, the newest first.
	FindMessages(ctx context.Context, q JourneyQuery) ([]JourneyMessage, error)
	// NodeQueueAction and NodeUpdateSettings act on another member (by
	// name; "" or this node's name act here).
	NodeQueueAction(ctx context.Context, node, id, action string) error
	NodeUpdateSettings(ctx context.Context, node string, s SettingsUpdate) (Settings, error)

	Actors(ctx context.Context) (map[string]int, error)
	Stats(ctx context.Context) (Stats, error)
	// Rules returns the "server" (this node's) or "cluster" (every
	// member's) rule set; SetRules replaces it (an *Error 400 when a rule
	// is invalid) and returns what is in force.
	Rules(ctx context.Context, scope string) (RuleSet, error)
	SetRules(ctx context.Context, scope string, rules json.RawMessage) (RuleSet, error)
	// AccountRules and SetAccountRules are an account's rules (run by its
	// account actor at delivery: folder, redirect, forward, vacation...).
	AccountRules(ctx context.Context, address string) (RuleSet, error)
	SetAccountRules(ctx context.Context, address string, rules json.RawMessage) (RuleSet, error)
	// Partitions reports the partitions whose actors run on this node.
	Partitions(ctx context.Context) ([]PartitionStatus, error)

	// Readiness says whether this node does its whole job now: its
	// stores answer, every partition has an owner and the ones it owns
	// are open, it has joined its cluster, it is not shutting down
	// (GET /readyz). It never fails: a check that cannot be made is a
	// check that failed.
	Readiness(ctx context.Context) Readiness

	// Submit is mail generated on this node by an account: it
	// authenticates user/password (an error wrapping mail.ErrAuthFailed
	// becomes 401) and enqueues raw for the recipients. client is the
	// HTTP client's address (the invalid Addr when unknown), by which
	// failed logins are limited like SMTP AUTH.
	Submit(ctx context.Context, client netip.Addr, user, password string, to []string, raw []byte) (id string, err error)

	// Provisioning: domains, aliases, passwords, quotas (provision.go).
	Provisioning
	// Observing: history per minute, the delivery log (observe.go).
	Observing
}

// Error is an error meant for the operator, with its HTTP status.
// RetryAfter, on a 429 or 503, is sent as Retry-After (in whole seconds,
// rounded up); a 503 without one gets the default (5 s). Field names the
// request's field at fault in a 400 ("address", "queueMode", "id"): it
// is sent as "field" beside "error". Err, when set, is the cause (a
// sentinel of the error taxonomy, mail.ErrNotFound say), so that
// errors.Is still answers for an error rewritten for people; it is never
// sent.
type Error struct {
	Status     int
	Message    string
	Field      string
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary answers the error taxonomy's question (mail.IsTemporary), so
// that an *Error keeps its class when it crosses the cluster channel: a
// 429 or a 5xx may go away (a 500 is an error not understood, which the
// taxonomy takes as temporary), a 4xx is the request's fault.
func (e *Error) Temporary() bool {
	return e.Status == 429 || e.Status >= 500
}

// Cluster is GET /api/v1/cluster.
type Cluster struct {
	Members    []Member    `json:"members"`
	Partitions []Partition `json:"partitions"`
	// Conflicts are static partitions that more than one live member
	// claims: only Owner opens each ("" when none may: the member that
	// holds its data is not live).
	Conflicts []StaticConflict `json:"conflicts,omitempty"`
}

// StaticConflict is one static partition claimed by several live members.
type StaticConflict struct {
	Partition int      `json:"partition"`
	Owner     string   `json:"owner"`
	Claimants []string `json:"claimants"`
}

// Member is one node of the cluster.
type Member struct {
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	QueueMode string   `json:"queueMode"`
	State     string   `json:"state"` // alive, suspect, dead, left
	SMTP      string   `json:"smtp"`
	Admin     string   `json:"admin"`
	Version   string   `json:"version,omitempty"`
	Uptime    string   `json:"uptime,omitempty"`
}

// Partition is one account partition and the node that owns it.
type Partition struct {
	ID    int    `json:"id"`
	Owner string `json:"owner"`
}

// CreateAccount is the body of POST /api/v1/accounts. Exactly one of
// Password and PasswordHash is set; PasswordHash imports an existing
// argon2id or bcrypt hash in its PHC/modular-crypt form.
type CreateAccount struct {
	Address      string `json:"address"`
	Password     string `json:"password,omitempty"`
	PasswordHash string `json:"passwordHash,omitempty"`
	QuotaBytes   int64  `json:"quotaBytes,omitempty"`
}

// Account is one account as the API shows it (never its password hash).
type Account struct {
	Address    string    `json:"address"`
	QuotaBytes int64     `json:"quotaBytes"`
	UsedBytes  int64     `json:"usedBytes"`
	Messages   int       `json:"messages"`
	Created    time.Time `json:"created"`
	Partition  int       `json:"partition"`
	Owner      string    `json:"owner,omitempty"`
	Disabled   bool      `json:"disabled"` // takes no mail and no logins
}

// Message is one stored message in a mailbox listing.
type Message struct {
	ID       string    `json:"id"`
	Folder   string    `json:"folder"`
	Size     int64     `json:"size"`
	Received time.Time `json:"received"`
	Flags    []string  `json:"flags,omitempty"`
	From     string    `json:"from,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	UID      uint32    `json:"uid,omitempty"`
}

// Folder is one folder of an account, GET /api/v1/accounts/{a}/folders.
type Folder struct {
	Name        string `json:"name"`
	Messages    int64  `json:"messages"`
	Unseen      int64  `json:"unseen"`
	UIDValidity uint32 `json:"uidValidity"`
	UIDNext     uint32 `json:"uidNext"`
	SpecialUse  string `json:"specialUse,omitempty"`
}

// MoveMessage is the body of POST .../messages/{id}/move.
type MoveMessage struct {
	Folder string `json:"folder"`
}

// FlagMessage is the body of POST .../messages/{id}/flags.
type FlagMessage struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

// MailboxAdmin is implemented by an API that changes mailboxes: the
// folders of an account, and deleting, moving and flagging a message
// (each done by the account's owner, the only writer).
type MailboxAdmin interface {
	Folders(ctx context.Context, address string) ([]Folder, error)
	// FolderMessages lists the messages of one folder (as Messages, in
	// the order received), an error wrapping a 404 for no such folder.
	FolderMessages(ctx context.Context, address, folder string) ([]Message, error)
	DeleteMessage(ctx context.Context, address, id string) error
	MoveMessage(ctx context.Context, address, id, folder string) error
	FlagMessage(ctx context.Context, address, id string, add, remove []string) error
}

// QueueEntry is one queued message, GET /api/v1/queue.
type QueueEntry struct {
	ID          string           `json:"id"`
	Sender      string           `json:"sender"`
	Recipients  []QueueRecipient `json:"recipients"`
	State       string           `json:"state"` // active, deferred, held, damaged (LastError says why)
	Attempts    int              `json:"attempts"`
	NextAttempt *time.Time       `json:"nextAttempt,omitempty"`
	LastError   string           `json:"lastError,omitempty"`
	Received    time.Time        `json:"received"`
	Size        int64            `json:"size"`
	Node        string           `json:"node,omitempty"` // whose queue (cluster-wide listings)
}

// NodeInfo is one member in GET /api/v1/nodes.
type NodeInfo struct {
	Member
	Actors       map[string]int    `json:"actors"`
	Activations  int64             `json:"activations"`
	Passivations int64             `json:"passivations"`
	Queue        QueueSummary      `json:"queue"`
	Partitions   []PartitionStatus `json:"partitions"`
	Stats        Stats             `json:"stats"`
	// Stores is the free space of each store's filesystem, as the
	// node's free-space guard sees it.
	Stores []StoreSpace `json:"stores,omitempty"`
	Error  string       `json:"error,omitempty"` // the member could not be asked
}

// StoreSpace is the free space of one store's filesystem (stores on one
// filesystem show the same figures).
type StoreSpace struct {
	Store      string `json:"store"` // queue, accounts
	Dir        string `json:"dir"`
	FreeBytes  int64  `json:"freeBytes"`
	TotalBytes int64  `json:"totalBytes"`
	// MinFreeBytes is the limit below which new mail is refused (452
	// 4.3.1) and Local Delivery defers: --min-free-space, or the floor
	// and 8 MiB when that is more. FloorBytes is what the stores need
	// for their own writes; below it, only writes that free space pass.
	MinFreeBytes int64 `json:"minFreeBytes"`
	FloorBytes   int64 `json:"floorBytes"`
	// Low: below MinFreeBytes now. Short: below FloorBytes.
	Low   bool `json:"low"`
	Short bool `json:"short,omitempty"`
	// ReserveBytes is the reserve file kept on the filesystem (removed
	// when the disk fills up, so that the node can start and finish its
	// writes; made again once there is room); ReserveHeld: it is there.
	ReserveBytes int64  `json:"reserveBytes"`
	ReserveHeld  bool   `json:"reserveHeld"`
	Error        string `json:"error,omitempty"` // statfs failed: the guard is blind
}

// QueueSummary is a node's queue by state and destination.
type QueueSummary struct {
	Total    int            `json:"total"`
	Active   int            `json:"active"`
	Deferred int            `json:"deferred"`
	Held     int            `json:"held"`
	Damaged  int            `json:"damaged,omitempty"` // held because their stored data failed its check
	Oldest   *time.Time     `json:"oldest,omitempty"`
	ByDomain map[string]int `json:"byDomain"`
}

// Journey is GET /api/v1/journey/{id}: the steps of one message on every
// node, in time order (design.md).
type Journey struct {
	Steps []JourneyEvent `json:"steps"`
}

// JourneyEvent is one step of a message, GET /api/v1/journey/{id}.
type JourneyEvent struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	ID     string    `json:"id"` // the message id (a report or copy has a derived id)
	Event  string    `json:"event"`
	Detail string    `json:"detail"`
}

// QueueRecipient is the state of one recipient of a queued message.
type QueueRecipient struct {
	Address     string     `json:"address"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"nextAttempt,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
}

// Settings is GET /api/v1/settings.
type Settings struct {
	QueueMode string   `json:"queueMode"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
}

// SettingsUpdate is the body of PUT /api/v1/settings; nil fields are left
// as they are.
type SettingsUpdate struct {
	QueueMode *string `json:"queueMode,omitempty"`
}

// RuleSet is GET/PUT /api/v1/rules/{scope}: a JSON array of rules (see
// package rules and README.md) and, for the cluster-wide set, its version.
type RuleSet struct {
	Scope   string          `json:"scope"`
	Version int64           `json:"version,omitempty"`
	Rules   json.RawMessage `json:"rules"`
}

// PartitionStatus is one partition actor on the node answering, GET
// /api/v1/partitions.
type PartitionStatus struct {
	ID int `json:"id"`
	// Open: the node holds the partition's data. False while another
	// process still holds it (a handoff in progress, or two nodes that
	// both believe they own it: the storage fence lets one in).
	Open           bool `json:"open"`
	ActiveAccounts int  `json:"activeAccounts"`
	// Idle: the data is closed because nothing needed it for
	// --partition-idle (Open stays true; the next request opens it).
	Idle bool `json:"idle,omitempty"`
	// Error says why the partition's data failed to open at the last try
	// when that was not a lock held elsewhere: damaged files (Damaged) or
	// another error. Its mail waits in the queues and its requests answer
	// 503 while the node tries again; the other partitions and the queue
	// go on.
	Error   string `json:"error,omitempty"`
	Damaged bool   `json:"damaged,omitempty"`
	// LockError: Error is a lock that cannot be taken on the store's
	// filesystem (EBADF, ENOLCK, EIO ...), not a lock held by another
	// node; the node retries slowly and says so in its log.
	LockError bool `json:"lockError,omitempty"`
	// HeldBy names the open that holds the data while this node waits
	// for it (its lock file's owner, pid and host).
	HeldBy string `json:"heldBy,omitempty"`
	// Epoch is the fencing token of this node's open of the data.
	Epoch uint64 `json:"epoch,omitempty"`
	// LastFailure is the last failure that closed the open data (another
	// node opened it since, or a write or sync error), with its time.
	LastFailure string `json:"lastFailure,omitempty"`
}

// Stats is GET /api/v1/stats: counters since start and latency quantiles
// over the most recent deliveries; the load generator reads it.
type Stats struct {
	Accepted        int64     `json:"accepted"`        // messages enqueued (250 to DATA or submit)
	DeliveredLocal  int64     `json:"deliveredLocal"`  // recipients stored in mailboxes
	Relayed         int64     `json:"relayed"`         // recipients accepted by a remote MTA
	Bounced         int64     `json:"bounced"`         // recipients failed permanently
	Deferred        int64     `json:"deferred"`        // temporary failures
	Transferred     int64     `json:"transferred"`     // messages handed to a Locally-for-Others member
	FilterRuns      int64     `json:"filterRuns"`      // external filter invocations on this node
	QueueDepth      int       `json:"queueDepth"`      // messages in the queue now
	StoreLatencyP50 float64   `json:"storeLatencyP50"` // seconds, received -> stored
	StoreLatencyP99 float64   `json:"storeLatencyP99"`
	Since           time.Time `json:"since"`
}

// Readiness is GET /readyz: whether the node does its whole job now, and
// each check that decides it.
type Readiness struct {
	Ready  bool    `json:"ready"`
	Checks []Check `json:"checks"`
}

// Check is one condition of readiness. Detail says what was found (why
// it failed); the endpoint sends it only to a client on loopback or with
// a token.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// RawMessageOpener is implemented by an API that streams a stored
// message (GET .../messages/{id}/raw) rather than holding it whole: size
// is its length, and an error while reading cuts the response short.
type RawMessageOpener interface {
	OpenRawMessage(ctx context.Context, address, id string) (size int64, body io.ReadCloser, err error)
}
