package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// sensorPack registers pack watch with sensor watch.poll on trigger watch.tick, and a rule
// on that trigger (enabled when used).
func sensorPack(t *testing.T, s *store.Store, used bool) {
	t.Helper()
	_, err := s.PackRegister(context.Background(), store.PackRegistration{
		Pack:     store.Pack{Ref: "watch", Path: "/packs/watch"},
		Actions:  []store.Action{{Ref: "watch.noop", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 60, Enabled: true}},
		Triggers: []store.Trigger{{Ref: "watch.tick", Output: json.RawMessage(`{"n": {"type": "integer"}}`)}},
		Sensors: []store.Sensor{{Ref: "watch.poll", EntryPoint: "poll.sh", TriggerRefs: []string{"watch.tick"}, Enabled: true,
			Config: json.RawMessage(`{"every": 1}`)}},
		Rules: []store.Rule{{Ref: "watch.on_tick", TriggerRef: "watch.tick", ActionRef: "watch.noop", Enabled: used}},
	})
	require.NoError(t, err)
}

func TestSensorWantedFollowsRulesAndEnabled(t *testing.T) {
	s := storetest.NewStore(t)
	ctx := context.Background()
	sensorPack(t, s, false)
	wanted, err := s.SensorListWanted(ctx)
	require.NoError(t, err)
	require.Empty(t, wanted, "no enabled rule uses its trigger")

	sensorPack(t, s, true)
	wanted, err = s.SensorListWanted(ctx)
	require.NoError(t, err)
	require.Len(t, wanted, 1)
	w := wanted[0]
	require.Equal(t, "watch.poll", w.Ref)
	require.Equal(t, "/packs/watch", w.PackPath)
	require.JSONEq(t, `{"every": 1}`, string(w.Config))
	require.JSONEq(t, `{"n": {"type": "integer"}}`, string(w.Outputs["watch.tick"]))

	require.NoError(t, s.SensorSetEnabled(ctx, "watch.poll", false))
	wanted, err = s.SensorListWanted(ctx)
	require.NoError(t, err)
	require.Empty(t, wanted)
	v, err := s.SensorGetByRef(ctx, "watch.poll")
	require.NoError(t, err)
	require.Equal(t, "disabled", v.Status)
	require.ErrorIs(t, s.SensorSetEnabled(ctx, "watch.gone", true), store.ErrNotFound)
}

// TestSensorLeaseRace has replicas race for one lease, again and again: each round exactly one
// takes it, the others are refused until it expires or is released, and only the holder's
// events and token count.
func TestSensorLeaseRace(t *testing.T) {
	s := storetest.NewStore(t)
	ctx := context.Background()
	sensorPack(t, s, true)
	const replicas = 6
	for round := range 5 {
		var (
			mu      sync.Mutex
			winners []string
			tokens  = map[string]string{}
			wg      sync.WaitGroup
		)
		start := make(chan struct{})
		for i := range replicas {
			holder := fmt.Sprintf("r%d-%d", round, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				token, ok, err := s.SensorLeaseTake(ctx, "watch.poll", holder, time.Minute)
				if err != nil {
					t.Errorf("take: %v", err)
					return
				}
				if ok {
					mu.Lock()
					winners = append(winners, holder)
					tokens[holder] = token
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Len(t, winners, 1, "round %d: exactly one replica holds the lease", round)
		holder := winners[0]
		loser := fmt.Sprintf("r%d-x", round)

		require.NoError(t, s.SensorLeaseRenew(ctx, "watch.poll", holder, time.Minute))
		require.ErrorIs(t, s.SensorLeaseRenew(ctx, "watch.poll", loser, time.Minute), store.ErrLeaseLost)
		_, err := s.SensorEventInsert(ctx, "watch.poll", holder, store.EventInsertParams{TriggerRef: "watch.tick"})
		require.NoError(t, err)
		_, err = s.SensorEventInsert(ctx, "watch.poll", loser, store.EventInsertParams{TriggerRef: "watch.tick"})
		require.ErrorIs(t, err, store.ErrLeaseLost, "a replica without the lease records no event")
		sum := sha256.Sum256([]byte(tokens[holder]))
		h, err := s.SensorTokenHolderBySum(ctx, sum[:])
		require.NoError(t, err)
		require.Equal(t, store.SensorTokenHolder{SensorRef: "watch.poll", PackRef: "watch"}, h)

		require.NoError(t, s.SensorStateSet(ctx, "watch.poll", holder, store.SensorState{Status: "backoff", Restarts: 2, LastError: "exit status 1"}))
		v, err := s.SensorGetByRef(ctx, "watch.poll")
		require.NoError(t, err)
		require.Equal(t, "backoff", v.Status)
		require.Equal(t, holder, *v.Holder)
		require.Equal(t, 2, v.Restarts)

		require.NoError(t, s.SensorLeaseRelease(ctx, "watch.poll", holder))
		v, err = s.SensorGetByRef(ctx, "watch.poll")
		require.NoError(t, err)
		require.Equal(t, "stopped", v.Status)
		require.Nil(t, v.Holder)
		require.Equal(t, "exit status 1", v.LastError, "the last error outlives the lease")
		_, err = s.SensorTokenHolderBySum(ctx, sum[:])
		require.ErrorIs(t, err, store.ErrNotFound, "a released lease's token is void")
		require.ErrorIs(t, s.SensorLeaseRenew(ctx, "watch.poll", holder, time.Minute), store.ErrLeaseLost)
	}
}

// TestSensorLeaseExpires: a lease nobody renews lapses, after which another replica takes it
// and the old holder can neither renew it nor record an event.
func TestSensorLeaseExpires(t *testing.T) {
	s := storetest.NewStore(t)
	ctx := context.Background()
	sensorPack(t, s, true)
	_, ok, err := s.SensorLeaseTake(ctx, "watch.poll", "old", 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = s.SensorLeaseTake(ctx, "watch.poll", "new", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "the lease is live")
	require.Eventually(t, func() bool {
		_, ok, err = s.SensorLeaseTake(ctx, "watch.poll", "new", time.Minute)
		return err == nil && ok
	}, 5*time.Second, 50*time.Millisecond)
	require.ErrorIs(t, s.SensorLeaseRenew(ctx, "watch.poll", "old", time.Minute), store.ErrLeaseLost)
	_, err = s.SensorEventInsert(ctx, "watch.poll", "old", store.EventInsertParams{TriggerRef: "watch.tick"})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.ErrorIs(t, s.SensorStateSet(ctx, "watch.poll", "old", store.SensorState{Status: "running"}), store.ErrLeaseLost)
}
