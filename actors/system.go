package actors

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/storage"
)

// Deps are what a node's actors stand on.
type Deps struct {
	// OpenPartition opens account partitions. Nil on a node that owns no
	// partitions (a frontend).
	OpenPartition OpenPartition
	// Placement finds partition actors. Nil means every partition is
	// local (a single node): Start spawns their actors.
	Placement Placement
	// Queue is this node's durable queue.
	Queue QueueStore
	// Relayer sends mail for remote domains.
	Relayer Relayer
	// Transferer hands mail generated here to a Locally-for-Others member
	// (queue mode Remotely); nil on a single node.
	Transferer Transferer
	// MemberChannel returns the cluster channel address of a live member
	// ("" when it is not live or not known): the transfer protocol's
	// questions go there (ChannelPeers). TransferPeers, if set, is used
	// instead (tests connect Systems directly). Both nil on a single node.
	MemberChannel func(member string) string
	TransferPeers TransferPeers
	// Pipeline runs server-wide and cluster-wide rules and filters in the
	// Enqueuer; nil = none.
	Pipeline ContentPipeline
	// Mode returns this node's queue processing mode now; nil = locally.
	Mode   func() mail.QueueMode
	Logger *slog.Logger
	Stats  *Stats
	// MailLog is the delivery log (queued, each recipient's verdict,
	// transfers, reports, removals); nil writes none.
	MailLog *maillog.Log
	// Now is the clock (tests move it); nil = time.Now.
	Now func() time.Time
	// PartitionChanged, if set, is told when a local partition's data
	// opens and when it closes (testkit waits on it). It must not block.
	PartitionChanged func(id int, open bool)
	// AfterTransferStored is for tests only (nil otherwise): it runs when
	// a transfer from a member has just been stored durably, before the
	// queue hears of it and before the member's 250 (the node tests kill
	// the process there).
	AfterTransferStored func(id string)
}

// System is the actors of one node and the operations the rest of the node
// (SMTP sessions, the admin API) performs through them.
type System struct {
	cfg    Config
	system *actor.ActorSystem
	root   *actor.RootContext
	log    *slog.Logger
	stats  *Stats
	cancel context.CancelFunc

	place      Placement
	open       OpenPartition
	partMu     sync.Mutex
	partitions []*actor.PID // local partition actors, by id; nil entries when not local
	queue      *actor.PID
	bodies     *bodySource
	disp       *warmDispatcher // the mailboxes of the partition, account, queue and Local Delivery actors (dispatcher.go)
	uploads    *uploads        // the staged bodies of this node's APPENDs (upload.go)
	enq        *Enqueuer
	dir        *Directory

	stopOnce sync.Once

	dummyOnce sync.Once
	dummyHash string

	mode       func() mail.QueueMode
	transferer Transferer
	now        func() time.Time
	changed    func(id int, open bool)
}

// Submit takes mail generated on this node (a user's submission through
// the API, a rule's redirect, forward or auto-reply, a DSN) and queues it
// according to the node's queue processing mode (design.md, mail flow 6):
// Locally and Locally for Others queue it here, through the Enqueuer and
// its rules; Remotely stores it durably as it is (the "temp file") and
// hands it to a Locally-for-Others member, falling back to this node's
// queue on any failure. It returns once the message is durable here.
// System satisfies Submitter.
func (s *System) Submit(ctx context.Context, msg *mail.Message) error {
	if s.mode != nil && s.mode() == mail.ModeRemotely && s.transferer != nil {
		msg.Envelope.Transfer = true
	}
	return s.enq.Enqueue(ctx, msg)
}

// Start creates the actor system of a node and its actors, and recovers
// the queue.
func Start(cfg Config, deps Deps) (*System, error) {
	cfg = cfg.WithDefaults()
	if deps.Queue == nil || deps.Relayer == nil {
		return nil, errors.New("actors: Queue and Relayer are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	stats := deps.Stats
	if stats == nil {
		stats = NewStats(nil)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	libLog := log.With("lib", "protoactor")
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return libLog }),
		actor.WithDeadLetterRequestLogging(false),
	)
	base, cancel := context.WithCancel(context.Background())
	s := &System{cfg: cfg, system: system, root: system.Root, log: log, stats: stats, cancel: cancel, now: now}

	s.disp = newWarmDispatcher(warmWorkers, warmIdle, mailboxThroughput)
	s.place = deps.Placement
	s.changed = deps.PartitionChanged
	s.uploads = newUploads()
	s.bodies = &bodySource{queue: deps.Queue, uploads: s.uploads, fetches: make(chan struct{}, cfg.MaxFetches), timeout: cfg.RequestTimeout}
	// The body server: members pull the bodies of this queue that go to
	// their accounts by reference (bodyref.go), and those of the APPENDs
	// of this node's sessions (upload.go).
	if _, err := s.root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &bodyServerActor{queue: deps.Queue, uploads: s.uploads, slots: make(chan struct{}, cfg.MaxFetches), log: log}
	}, withStartGate()), bodyServerName); err != nil {
		s.Stop()
		return nil, err
	}
	s.open = deps.OpenPartition
	s.partitions = make([]*actor.PID, cfg.Partitions)
	if s.place == nil {
		if deps.OpenPartition == nil {
			cancel()
			return nil, errors.New("actors: a single node needs OpenPartition")
		}
		for i := range s.partitions {
			if err := s.StartPartition(i); err != nil {
				s.Stop()
				return nil, err
			}
		}
		s.place = localPlacement{s}
	}
	domains := map[string]bool{}
	for _, d := range cfg.LocalDomains {
		domains[strings.ToLower(strings.TrimSuffix(d, "."))] = true
	}
	s.dir = &Directory{domains: domains, parts: cfg.Partitions, place: s.place, root: s.root, timeout: cfg.LookupTimeout,
		ttl: cfg.LookupCacheTTL, now: now}
	// The queue's PID is known before it is spawned, so the Enqueuer (which
	// the queue's own DSN writer uses during recovery) is complete first.
	s.queue = system.NewLocalPID("queue")
	s.enq = &Enqueuer{store: deps.Queue, dir: s.dir, pipeline: deps.Pipeline, journal: stats.Journal, mlog: deps.MailLog,
		root: s.root, queue: s.queue, now: now, afterTransferStored: deps.AfterTransferStored}
	s.mode, s.transferer = deps.Mode, deps.Transferer
	peers := deps.TransferPeers
	if peers == nil && deps.MemberChannel != nil {
		peers = &ChannelPeers{Root: s.root, Channel: deps.MemberChannel}
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &queueActor{cfg: &s.cfg, store: deps.Queue, relayer: deps.Relayer, enq: s.enq,
			transferer: deps.Transferer, peers: peers, submitter: s,
			place: s.place, stats: stats, mlog: deps.MailLog, log: log, now: now, base: base, disp: s.disp}
	}, actor.WithDispatcher(s.disp), withStartGate())
	if _, err := s.root.SpawnNamed(props, "queue"); err != nil {
		s.Stop()
		return nil, err
	}
	if _, err := s.root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &transfersActor{queue: s.queue}
	}, withStartGate()), TransfersActor); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop stops the queue actors, then the partition actors (each closes its
// data after its account actors have stopped), then the actor system.
// Stop waits for all of it.
func (s *System) Stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		if s.queue != nil {
			_ = s.root.PoisonFuture(s.queue).Wait()
		}
		s.StopAllPartitions()
		s.system.Shutdown()
		s.disp.stop()
	})
}

// Enqueuer is the entrance to this node's queue.
func (s *System) Enqueuer() *Enqueuer { return s.enq }

// Directory answers which addresses are local accounts.
func (s *System) Directory() *Directory { return s.dir }

// Stats are this node's counters.
func (s *System) Stats() *Stats { return s.stats }

// ActorSystem is the protoactor system, for the cluster layer.
func (s *System) ActorSystem() *actor.ActorSystem { return s.system }

// LocalPartition returns the PID of a partition actor running here, or nil.
func (s *System) LocalPartition(id int) *actor.PID {
	s.partMu.Lock()
	defer s.partMu.Unlock()
	if id < 0 || id >= len(s.partitions) {
		return nil
	}
	return s.partitions[id]
}

// PartitionName is the actor name of partition id's actor on its owner;
// other nodes address it as actor.NewPID(ownerChannelAddress, name).
func PartitionName(id int) string { return fmt.Sprintf("partition-%d", id) }

// StartPartition starts the actor of partition id here (this node has
// become its owner). The actor opens the partition's data; while another
// process still holds it (a handoff in progress), it retries, and answers
// requests as temporarily unavailable.
func (s *System) StartPartition(id int) error {
	if s.open == nil {
		return errors.New("actors: this node stores no accounts (not a backend)")
	}
	s.partMu.Lock()
	defer s.partMu.Unlock()
	if id < 0 || id >= len(s.partitions) {
		return fmt.Errorf("actors: partition %d out of range", id)
	}
	if s.partitions[id] != nil {
		return nil
	}
	s.stats.partitionSeries(id)
	props := actor.PropsFromProducer(func() actor.Actor {
		p := newPartitionActor(id, s.open, &s.cfg, s.stats, s.log, s, s.now)
		p.changed = s.changed
		p.bodies = s.bodies
		p.disp = s.disp
		return p
	}, actor.WithDispatcher(s.disp), withStartGate()) // members address it by name
	pid, err := s.root.SpawnNamed(props, PartitionName(id))
	if err != nil {
		return err
	}
	s.partitions[id] = pid
	return nil
}

// StopPartition stops the actor of partition id and returns once its
// account actors have stopped and its data is closed, so that the next
// owner can open it.
func (s *System) StopPartition(id int) {
	s.partMu.Lock()
	var pid *actor.PID
	if id >= 0 && id < len(s.partitions) {
		pid, s.partitions[id] = s.partitions[id], nil
	}
	s.partMu.Unlock()
	if pid != nil {
		// Retire first (account actors finish their mailboxes; later
		// requests are answered "unavailable" at once), then poison: the
		// requests still queued are answered before the actor stops and
		// closes the data.
		_, _ = s.root.RequestFuture(pid, &retire{}, s.cfg.RequestTimeout).Result()
		_ = s.root.PoisonFuture(pid).Wait()
	}
}

// StopAllPartitions stops every local partition (a node that learns it was
// declared dead does this before anything else).
func (s *System) StopAllPartitions() {
	s.partMu.Lock()
	ids := []int{}
	for i, pid := range s.partitions {
		if pid != nil {
			ids = append(ids, i)
		}
	}
	s.partMu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); s.StopPartition(id) }()
	}
	wg.Wait()
}

// OwnedPartitions lists the partitions whose actors run here.
func (s *System) OwnedPartitions() []int {
	s.partMu.Lock()
	defer s.partMu.Unlock()
	var out []int
	for i, pid := range s.partitions {
		if pid != nil {
			out = append(out, i)
		}
	}
	return out
}

// PartitionState is what a local partition actor reports.
type PartitionState struct {
	ID int `json:"id"`
	// Open: this node holds the partition's data. False while another
	// process still holds it (a handoff in progress).
	Open bool `json:"open"`
	// ActiveAccounts is the number of account actors alive in it.
	ActiveAccounts int `json:"activeAccounts"`
	// Idle: the data is closed for being idle (Config.PartitionIdle);
	// Open stays true, the partition is still this node's and the next
	// request opens it.
	Idle bool `json:"idle,omitempty"`
	// Error says why the data failed to open at the last try, when that
	// was not a lock held elsewhere (damaged files, another error); the
	// partition actor answers its requests as temporarily unavailable
	// and tries again. Damaged: the failure is damage (storage.ErrDamaged).
	Error   string `json:"error,omitempty"`
	Damaged bool   `json:"damaged,omitempty"`
	// LockError: Error is a lock that cannot be taken (not held by
	// another node: storage.ErrLockFailed).
	LockError bool `json:"lockError,omitempty"`
	// HeldBy: the data is held by another open (a handoff, or two nodes
	// that both believe they own it), as the lock names its holder.
	HeldBy string `json:"heldBy,omitempty"`
	// Epoch is the open data's fencing token (0 while not open).
	Epoch uint64 `json:"epoch,omitempty"`
	// LastFailure is the last failure of the open data (a newer epoch or
	// an I/O error closed it), with its time.
	LastFailure string `json:"lastFailure,omitempty"`
}

// PartitionStates reports every local partition actor's state.
func (s *System) PartitionStates(ctx context.Context) []PartitionState {
	var out []PartitionState
	for _, id := range s.OwnedPartitions() {
		pid := s.LocalPartition(id)
		if pid == nil {
			continue
		}
		st := PartitionState{ID: id}
		if r, err := request[*partitionState](ctx, s.root, pid, &partitionStatus{}, 5*time.Second); err == nil {
			st.Open, st.ActiveAccounts, st.Error, st.Damaged = r.open, r.accounts, r.err, r.damaged
			st.LockError, st.HeldBy, st.Epoch, st.LastFailure = r.lockErr, r.heldBy, r.epoch, r.lost
			st.Idle = r.idle
		}
		out = append(out, st)
	}
	return out
}

// RetryLocal asks the queue to attempt at once the local recipients that
// wait because the owner of one of these partitions could not be reached
// (4.4.x: no owner, a handoff, no answer). The cluster calls it when those
// partitions' owners change or come back, so mail waiting for an
// unreachable backend moves as soon as one answers; recipients deferred
// for other reasons (a full mailbox) keep their backoff.
func (s *System) RetryLocal(partitions []int) {
	s.root.Send(s.queue, &retryLocal{partitions: append([]int(nil), partitions...)})
}

// localPlacement places every partition on this node (a single node). It
// reads the partition actors under the System's lock: a stop clears them
// while sessions (IMAP) still look where an account is.
type localPlacement struct{ s *System }

func (l localPlacement) PartitionPID(p int) (*actor.PID, error) {
	pid := l.s.LocalPartition(p)
	if pid == nil {
		return nil, fmt.Errorf("%w: partition %d has no owner", mail.ErrUnavailable, p)
	}
	return pid, nil
}

// Account is an account record as the admin layer sees it.
type Account = pb.AccountRecord

func (s *System) partitionOf(addr string) (*actor.PID, error) {
	return s.place.PartitionPID(mail.PartitionOf(strings.ToLower(addr), s.cfg.Partitions))
}

func (s *System) accountRequest(ctx context.Context, addr string, msg interface{}) (*pb.AccountReply, error) {
	pid, err := s.partitionOf(addr)
	if err != nil {
		return nil, err
	}
	reply, err := request[*pb.AccountReply](ctx, s.root, pid, msg, s.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return reply, goError(reply.Error)
}

// CreateAccount creates an account with an already hashed password.
func (s *System) CreateAccount(ctx context.Context, address, passwordHash string, quota int64) (*Account, error) {
	reply, err := s.accountRequest(ctx, address, &pb.CreateAccount{Account: &pb.AccountRecord{
		Address: strings.ToLower(address), PasswordHash: passwordHash, QuotaBytes: quota,
		CreatedUnixNano: time.Now().UnixNano(),
	}})
	if err != nil {
		return nil, err
	}
	return reply.Account, nil
}

// GetAccount returns one account.
func (s *System) GetAccount(ctx context.Context, address string) (*Account, error) {
	reply, err := s.accountRequest(ctx, address, &pb.GetAccount{Address: address})
	if err != nil {
		return nil, err
	}
	return reply.Account, nil
}

// DeleteAccount deletes an account and its mailbox.
func (s *System) DeleteAccount(ctx context.Context, address string) error {
	_, err := s.accountRequest(ctx, address, &pb.DeleteAccount{Address: address})
	return err
}

// SetAccountRules replaces an account's rules (JSON array of rules.Rule).
func (s *System) SetAccountRules(ctx context.Context, address string, js []byte) (*Account, error) {
	reply, err := s.accountRequest(ctx, address, &pb.SetAccountRules{Address: address, Rules: js})
	if err != nil {
		return nil, err
	}
	return reply.Account, nil
}

// SetAlias makes alias deliver to account.
func (s *System) SetAlias(ctx context.Context, alias, account string) error {
	_, err := s.accountRequest(ctx, alias, &pb.SetAlias{Alias: alias, Account: account})
	return err
}

// Accounts lists the accounts of every partition.
func (s *System) Accounts(ctx context.Context) ([]*Account, error) {
	var out []*Account
	for p := 0; p < s.cfg.Partitions; p++ {
		pid, err := s.place.PartitionPID(p)
		if err != nil {
			return nil, err
		}
		reply, err := request[*pb.AccountReply](ctx, s.root, pid, &pb.ListAccounts{}, s.cfg.RequestTimeout)
		if err != nil {
			return nil, err
		}
		if err := goError(reply.Error); err != nil {
			return nil, err
		}
		out = append(out, reply.Accounts...)
	}
	return out, nil
}

// Messages lists an account's stored messages.
func (s *System) Messages(ctx context.Context, address, folder string) ([]*pb.MessageInfo, error) {
	pid, err := s.partitionOf(address)
	if err != nil {
		return nil, err
	}
	reply, err := request[*pb.MessagesReply](ctx, s.root, pid, &pb.ListMessages{Account: address, Folder: folder}, s.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return reply.Messages, goError(reply.Error)
}

// RawMessage returns one stored message's bytes.
func (s *System) RawMessage(ctx context.Context, address, id string) ([]byte, error) {
	pid, err := s.partitionOf(address)
	if err != nil {
		return nil, err
	}
	reply, err := request[*pb.RawReply](ctx, s.root, pid, &pb.GetRaw{Account: address, Id: id}, s.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return reply.Raw, goError(reply.Error)
}

// OpenRaw returns a reader of message id of address and its size,
// without holding the message whole: it asks the owner of the account for
// pieces of at most 256 KiB as it is read (the first one after the owner
// checked the whole message, so that a damaged one is an error here,
// wrapping storage.ErrDamaged, before any byte). A piece that fails later
// (the owner moved, the file changed) is the reader's error.
func (s *System) OpenRaw(ctx context.Context, address, id string) (int64, io.ReadCloser, error) {
	pid, err := s.partitionOf(address)
	if err != nil {
		return 0, nil, err
	}
	r := &rawReader{ctx: ctx, s: s, pid: pid, account: address, id: id}
	if err := r.fetch(); err != nil {
		return 0, nil, err
	}
	return r.size, r, nil
}

// rawReader reads a stored message in pieces (OpenRaw).
type rawReader struct {
	ctx         context.Context
	s           *System
	pid         *actor.PID
	account, id string
	size, off   int64 // the message's size, the offset of the next piece
	buf         []byte
}

func (r *rawReader) fetch() error {
	reply, err := request[*pb.RawReply](r.ctx, r.s.root, r.pid,
		&pb.GetRaw{Account: r.account, Id: r.id, Offset: r.off, Length: rawPieceMax}, r.s.cfg.RequestTimeout)
	if err != nil {
		return err
	}
	if err := goError(reply.Error); err != nil {
		return err
	}
	if r.off == 0 {
		r.size = reply.GetSize()
	}
	if len(reply.Raw) == 0 && r.off < r.size {
		return fmt.Errorf("%w: an empty piece at %d of %d bytes", mail.ErrUnavailable, r.off, r.size)
	}
	r.buf, r.off = reply.Raw, r.off+int64(len(reply.Raw))
	return nil
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		if err := r.fetch(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *rawReader) Close() error { return nil }

// Authenticate checks an account's password and returns the account's
// address. Hashing runs in the caller's goroutine, not in an actor.
func (s *System) Authenticate(ctx context.Context, user, password string) (string, error) {
	acct, err := s.GetAccount(ctx, user)
	if errors.Is(err, mail.ErrNotFound) {
		// Spend the time a real check takes, so timing does not tell
		// which accounts exist.
		_, _ = storage.VerifyPassword(s.dummy(), password)
		return "", mail.ErrAuthFailed
	}
	if err != nil {
		return "", err
	}
	ok, err := storage.VerifyPassword(acct.PasswordHash, password)
	if err != nil || !ok {
		return "", mail.ErrAuthFailed
	}
	if acct.Disabled {
		// Said only to whoever knows the password.
		return "", fmt.Errorf("%w: %w", mail.ErrAuthFailed, mail.ErrDisabled)
	}
	return acct.Address, nil
}

// dummy returns an argon2id hash of a random password, made once, used to
// keep failed logins for unknown users as slow as for known ones.
func (s *System) dummy() string {
	s.dummyOnce.Do(func() {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		s.dummyHash, _ = storage.HashPassword(string(b))
	})
	return s.dummyHash
}

// Queue returns a copy of every queued message's envelope.
func (s *System) Queue(ctx context.Context) ([]*mail.Envelope, error) {
	reply, err := request[*queueEntries](ctx, s.root, s.queue, &queueList{}, s.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return reply.entries, reply.err
}

// OldestQueued returns the arrival time of the oldest queued message (zero
// when the queue is empty).
func (s *System) OldestQueued(ctx context.Context) (time.Time, error) {
	reply, err := request[*queueOldestReply](ctx, s.root, s.queue, &queueOldest{}, s.cfg.RequestTimeout)
	if err != nil {
		return time.Time{}, err
	}
	return reply.at, nil
}

// QueueEntry returns a copy of one queued message's envelope.
func (s *System) QueueEntry(ctx context.Context, id string) (*mail.Envelope, error) {
	reply, err := request[*queueEntries](ctx, s.root, s.queue, &queueGet{id: id}, s.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	if reply.err != nil {
		return nil, reply.err
	}
	return reply.entries[0], nil
}

// QueueAction retries, holds, releases or deletes a queued message.
func (s *System) QueueAction(ctx context.Context, id, action string) error {
	reply, err := request[*queueEntries](ctx, s.root, s.queue, &queueAction{id: id, action: action}, s.cfg.RequestTimeout)
	if err != nil {
		return err
	}
	return reply.err
}
