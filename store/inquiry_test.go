package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// newInquiry makes a store with an ask action and starts the inquiry of one of its
// executions, timing out after timeout.
func newInquiry(t *testing.T, timeout time.Duration) (*store.Store, store.Inquiry) {
	t.Helper()
	ctx := context.Background()
	s := storetest.NewStore(t)
	_, err := s.PackRegister(ctx, store.PackRegistration{
		Pack: store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.ask", RunnerType: "inquiry", OutputFormat: "json", TimeoutSeconds: 5, Enabled: true,
			Parameters: json.RawMessage(`{}`)}},
	})
	require.NoError(t, err)
	c, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.ask", Parameters: json.RawMessage(`{}`)})
	require.NoError(t, err)
	require.Equal(t, store.ExecutionScheduled, c.Execution.Status)
	p := store.InquiryStartParams{Execution: c.Execution.ID, Prompt: "deploy?", Schema: json.RawMessage(`{"type":"object"}`),
		Roles: []string{"operator"}, Timeout: timeout}
	inq, exec, ok, err := s.InquiryStart(ctx, p)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, store.ExecutionRunning, exec.Status)
	require.Equal(t, store.InquiryPending, inq.Status)
	require.Equal(t, []string{"operator"}, inq.Roles)
	require.Empty(t, inq.Users)

	_, _, again, err := s.InquiryStart(ctx, p)
	require.NoError(t, err)
	require.False(t, again, "a second start of the same execution changes nothing")
	all, total, err := s.InquiryList(ctx, store.InquiryFilter{Execution: &c.Execution.ID}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Equal(t, inq.ID, all[0].ID)
	return s, inq
}

func TestInquiryRespondEndsTheExecutionWithTheAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, inq := newInquiry(t, time.Hour)

	answered, exec, err := s.InquiryRespond(ctx, inq.ID, "alice", json.RawMessage(`{"approved":true}`))
	require.NoError(t, err)
	require.Equal(t, store.InquiryResponded, answered.Status)
	require.Equal(t, "alice", *answered.RespondedBy)
	require.NotNil(t, answered.EndedAt)
	require.Equal(t, store.ExecutionCompleted, exec.Status)
	require.JSONEq(t, `{"approved":true}`, string(exec.Result))

	for _, end := range []func() error{
		func() error { _, _, err := s.InquiryRespond(ctx, inq.ID, "bob", json.RawMessage(`{}`)); return err },
		func() error { _, _, _, err := s.InquiryTimeOut(ctx, inq.ID); return err },
		func() error { _, _, _, err := s.InquiryCancel(ctx, inq.ID); return err },
	} {
		err := end()
		require.ErrorIs(t, err, store.ErrConflict)
		require.ErrorContains(t, err, "already responded")
	}
	_, err = s.Pool().Exec(ctx, `UPDATE attune.inquiry SET status = 'pending' WHERE id = $1`, inq.ID)
	require.Error(t, err, "the database refuses to move an ended inquiry")
}

func TestInquiryAnswersRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, inq := newInquiry(t, time.Hour)

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, errs[i] = s.InquiryRespond(ctx, inq.ID, "user", json.RawMessage(`{"n":`+string(rune('0'+i))+`}`))
		}()
	}
	close(start)
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, won, "two answers won")
			won = i
			continue
		}
		require.ErrorIs(t, err, store.ErrConflict)
	}
	require.NotEqual(t, -1, won, "no answer won")
	exec, err := s.ExecutionGet(ctx, inq.Execution)
	require.NoError(t, err)
	require.JSONEq(t, `{"n":`+string(rune('0'+won))+`}`, string(exec.Result), "the execution holds the winning answer")
}

// An answer that comes after the timeout loses to it, even before any executor has timed
// the inquiry out: past timeout_at the inquiry has timed out.
func TestInquiryTimeoutRacesAnAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for range 5 {
		s, inq := newInquiry(t, 0)
		due, err := s.InquiriesDue(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []int64{inq.ID}, due)

		var wg sync.WaitGroup
		var answerErr, timeoutErr error
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, _, answerErr = s.InquiryRespond(ctx, inq.ID, "alice", json.RawMessage(`{}`))
		}()
		go func() { defer wg.Done(); <-start; _, _, _, timeoutErr = s.InquiryTimeOut(ctx, inq.ID) }()
		close(start)
		wg.Wait()
		require.NoError(t, timeoutErr)
		require.ErrorIs(t, answerErr, store.ErrConflict)
		require.True(t, strings.Contains(answerErr.Error(), "timed out") || strings.Contains(answerErr.Error(), "already timed_out"),
			"%v", answerErr)
		got, err := s.InquiryGet(ctx, inq.ID)
		require.NoError(t, err)
		require.Equal(t, store.InquiryTimedOut, got.Status)
		require.Nil(t, got.Response)
		exec, err := s.ExecutionGet(ctx, inq.Execution)
		require.NoError(t, err)
		require.Equal(t, store.ExecutionTimeout, exec.Status)
		require.Contains(t, *exec.Reason, "no answer to inquiry")
		due, err = s.InquiriesDue(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, due)
	}
}

// Until an executor times it out, an inquiry past its timeout is still pending, and an answer
// then is refused naming the timeout; the inquiry and its execution are left for the timeout.
func TestInquiryAnswerAfterItsTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, inq := newInquiry(t, 0)
	_, _, err := s.InquiryRespond(ctx, inq.ID, "alice", json.RawMessage(`{}`))
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorContains(t, err, fmt.Sprintf("inquiry %d timed out at", inq.ID))
	got, err := s.InquiryGet(ctx, inq.ID)
	require.NoError(t, err)
	require.Equal(t, store.InquiryPending, got.Status)
	exec, err := s.ExecutionGet(ctx, inq.Execution)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionRunning, exec.Status)
}

func TestInquiryCancelFollowsItsExecution(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, inq := newInquiry(t, time.Hour)

	orphaned, err := s.InquiriesOrphaned(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, orphaned)
	_, ok, err := s.ExecutionTransition(ctx, store.ExecutionTransition{ID: inq.Execution, From: []string{store.ExecutionRunning},
		To: store.ExecutionCanceling})
	require.NoError(t, err)
	require.True(t, ok)

	_, _, err = s.InquiryRespond(ctx, inq.ID, "alice", json.RawMessage(`{}`))
	require.ErrorIs(t, err, store.ErrConflict, "an execution being cancelled takes no answer")
	require.ErrorContains(t, err, "canceling")
	orphaned, err = s.InquiriesOrphaned(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{inq.ID}, orphaned)

	cancelled, exec, ended, err := s.InquiryCancel(ctx, inq.ID)
	require.NoError(t, err)
	require.True(t, ended)
	require.Equal(t, store.InquiryCancelled, cancelled.Status)
	require.Equal(t, store.ExecutionCancelled, exec.Status)
	_, _, err = s.InquiryRespond(ctx, inq.ID, "alice", json.RawMessage(`{}`))
	require.True(t, errors.Is(err, store.ErrConflict))
	require.ErrorContains(t, err, "already cancelled")
}
