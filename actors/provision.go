package actors

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// Provisioning in the partition actor: an account's password, quota and
// whether it is disabled, the aliases of a partition, and the check that
// a disabled account takes no mail.

// resolve is Resolve of the partition's data, refusing a disabled
// account of this partition (mail.ErrDisabled: RCPT answers 550 5.2.1).
// An alias's target in another partition is checked by its own account
// actor at delivery.
func (p *partitionActor) resolve(addr string) (string, error) {
	acct, err := p.data.Resolve(addr)
	if err != nil || mail.PartitionOf(acct, p.cfg.Partitions) != p.id {
		return acct, err
	}
	a, aerr := p.data.Account(acct)
	if aerr == nil && a.Disabled {
		return "", fmt.Errorf("account %s: %w", acct, mail.ErrDisabled)
	}
	return acct, nil
}

// updateAccount changes what m sets of an account and stops its actor,
// so that the next activation reads the new record.
func (p *partitionActor) updateAccount(ctx actor.Context, cctx context.Context, m *pb.UpdateAccount) {
	addr := strings.ToLower(m.Address)
	a, err := p.data.Account(addr)
	if err == nil {
		if m.PasswordHash != "" {
			a.PasswordHash = m.PasswordHash
		}
		if m.SetQuota {
			if m.QuotaBytes < 0 {
				err = fmt.Errorf("%w: a negative quota", mail.ErrInvalid)
			}
			a.QuotaBytes = m.QuotaBytes
		}
		if m.SetDisabled {
			a.Disabled = m.Disabled
		}
	}
	if err == nil {
		err = p.data.UpdateAccount(cctx, a)
	}
	if err != nil {
		ctx.Respond(&pb.AccountReply{Error: pbError(err)})
		return
	}
	p.stopChild(ctx, addr)
	ctx.Respond(&pb.AccountReply{Account: p.record(a)})
}

// listAliases answers the aliases of the partition, sorted.
func (p *partitionActor) listAliases(ctx actor.Context) {
	as, err := p.data.Aliases()
	reply := &pb.AliasList{Error: pbError(err)}
	for alias, target := range as {
		reply.Aliases = append(reply.Aliases, &pb.Alias{Alias: alias, Target: target})
	}
	sort.Slice(reply.Aliases, func(i, j int) bool { return reply.Aliases[i].Alias < reply.Aliases[j].Alias })
	ctx.Respond(reply)
}

// UpdateAccount changes the account as u says (password hash, quota,
// disabled) at the owner of its partition and returns the record.
func (s *System) UpdateAccount(ctx context.Context, u *pb.UpdateAccount) (*Account, error) {
	reply, err := s.accountRequest(ctx, u.Address, u)
	if err != nil {
		return nil, err
	}
	return reply.Account, nil
}

// DeleteAlias removes an alias (mail.ErrNotFound when there is none).
func (s *System) DeleteAlias(ctx context.Context, alias string) error {
	_, err := s.accountRequest(ctx, alias, &pb.DeleteAlias{Alias: alias})
	return err
}

// Aliases lists the aliases of every partition, sorted.
func (s *System) Aliases(ctx context.Context) ([]*pb.Alias, error) {
	var out []*pb.Alias
	for p := 0; p < s.cfg.Partitions; p++ {
		pid, err := s.place.PartitionPID(p)
		if err != nil {
			return nil, err
		}
		reply, err := request[*pb.AliasList](ctx, s.root, pid, &pb.ListAliases{}, s.cfg.RequestTimeout)
		if err != nil {
			return nil, err
		}
		if err := goError(reply.Error); err != nil {
			return nil, err
		}
		out = append(out, reply.Aliases...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out, nil
}
