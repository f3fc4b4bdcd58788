package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SensorTokenPrefix starts every token of a running sensor, so that the API tells it from its
// other tokens without a lookup.
const SensorTokenPrefix = "ats_"

// ErrLeaseLost means the caller no longer holds the sensor's lease: it expired, or another
// replica holds it now. A holder that gets it must stop the sensor at once.
var ErrLeaseLost = errors.New("sensor lease lost")

// SensorRun is what a replica needs to run an enabled sensor that an enabled rule uses.
type SensorRun struct {
	Ref         string
	PackRef     string
	EntryPoint  string
	TriggerRefs []string
	Config      json.RawMessage
	// PackPath is the directory the sensor's pack was registered from; its program is there
	// only for a pack with no version.
	PackPath string
	// PackVersion is the hash of the pack's current version, where the sensor's program is
	// run from; empty for a pack registered before versions.
	PackVersion string
	// Outputs are the payload schemas of its triggers, by ref; a trigger that does not exist
	// is missing.
	Outputs map[string]json.RawMessage
	Updated time.Time
}

// SensorListWanted returns the enabled sensors with an entry point of which at least one
// trigger is used by an enabled rule: those that should be running.
func (q *Queries) SensorListWanted(ctx context.Context) ([]SensorRun, error) {
	return queryAll(ctx, q.db, "list wanted sensors", func(r pgx.Row) (SensorRun, error) {
		var s SensorRun
		err := r.Scan(&s.Ref, &s.PackRef, &s.EntryPoint, &s.TriggerRefs, &s.Config, &s.PackPath, &s.PackVersion, &s.Outputs, &s.Updated)
		return s, err
	}, `
		SELECT s.ref, s.pack_ref, s.entry_point, s.trigger_refs, s.config, p.path, coalesce(v.hash, ''),
			(SELECT coalesce(jsonb_object_agg(t.ref, t.output), '{}') FROM attune.trigger t WHERE t.ref = ANY(s.trigger_refs)),
			greatest(s.updated, p.updated)
		FROM attune.sensor s JOIN attune.pack p ON p.id = s.pack
			LEFT JOIN attune.pack_version v ON v.id = p.current_version
		WHERE s.enabled AND s.entry_point <> ''
			AND EXISTS (SELECT 1 FROM attune.rule r WHERE r.enabled AND r.trigger_ref = ANY(s.trigger_refs))
		ORDER BY s.ref`)
}

// SensorLeaseTake gives holder the lease of sensor ref for ttl when nobody holds it or its
// holder's has expired, and returns the token the sensor's process is given, good while the
// lease is. ok is false, with no error, when another holds it. Taking a lease starts its
// restart count again and keeps the previous holder's last error.
func (q *Queries) SensorLeaseTake(ctx context.Context, ref, holder string, ttl time.Duration) (token string, ok bool, err error) {
	token, sum, err := newToken(SensorTokenPrefix)
	if err != nil {
		return "", false, fmt.Errorf("take lease of sensor %s: %w", ref, err)
	}
	tag, err := q.db.Exec(ctx, `
		INSERT INTO attune.sensor_lease AS l (sensor_ref, holder, expires, token_hash)
		SELECT ref, $2, now() + $3::bigint * interval '1 microsecond', $4 FROM attune.sensor WHERE ref = $1
		ON CONFLICT (sensor_ref) DO UPDATE SET holder = excluded.holder, expires = excluded.expires,
			token_hash = excluded.token_hash, status = 'starting', restarts = 0, started_at = NULL, pid = NULL
		WHERE l.expires <= now() OR l.holder = excluded.holder`, ref, holder, ttl.Microseconds(), sum)
	if err != nil {
		return "", false, fmt.Errorf("take lease of sensor %s: %w", ref, translate(err))
	}
	return token, tag.RowsAffected() == 1, nil
}

// SensorLeaseRenew extends holder's lease of sensor ref to ttl from now. It fails with
// ErrLeaseLost when holder's lease has expired or another holds it: a lapsed lease is never
// renewed, since another replica may have started the sensor meanwhile.
func (q *Queries) SensorLeaseRenew(ctx context.Context, ref, holder string, ttl time.Duration) error {
	tag, err := q.db.Exec(ctx, `UPDATE attune.sensor_lease SET expires = now() + $3::bigint * interval '1 microsecond'
		WHERE sensor_ref = $1 AND holder = $2 AND expires > now()`, ref, holder, ttl.Microseconds())
	if err != nil {
		return fmt.Errorf("renew lease of sensor %s: %w", ref, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("renew lease of sensor %s: %w", ref, ErrLeaseLost)
	}
	return nil
}

// SensorLeaseRelease ends holder's lease of sensor ref at once, once its process has stopped,
// so that another replica may take it without waiting it out. The status and last error stay.
func (q *Queries) SensorLeaseRelease(ctx context.Context, ref, holder string) error {
	if _, err := q.db.Exec(ctx, `UPDATE attune.sensor_lease SET expires = now(), status = 'stopped', pid = NULL, token_hash = NULL
		WHERE sensor_ref = $1 AND holder = $2`, ref, holder); err != nil {
		return fmt.Errorf("release lease of sensor %s: %w", ref, translate(err))
	}
	return nil
}

// SensorState is what the holder of a sensor's lease reports of its process.
type SensorState struct {
	// Status is starting, running or backoff.
	Status    string
	Restarts  int
	LastError string
	StartedAt *time.Time
	PID       *int
}

// SensorStateSet records holder's report on sensor ref, while its lease holds (ErrLeaseLost
// otherwise).
func (q *Queries) SensorStateSet(ctx context.Context, ref, holder string, st SensorState) error {
	tag, err := q.db.Exec(ctx, `UPDATE attune.sensor_lease SET status = $3, restarts = $4, last_error = $5, started_at = $6, pid = $7
		WHERE sensor_ref = $1 AND holder = $2 AND expires > now()`, ref, holder, st.Status, st.Restarts, st.LastError, st.StartedAt, st.PID)
	if err != nil {
		return fmt.Errorf("record state of sensor %s: %w", ref, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record state of sensor %s: %w", ref, ErrLeaseLost)
	}
	return nil
}

// SensorEventInsert records an event a sensor emitted, only while holder holds its lease: the
// lease's row is locked in the event's transaction, so no other replica takes the lease
// between the check and the commit. An event from a replica whose lease lapsed fails with
// ErrLeaseLost and is not recorded.
func (s *Store) SensorEventInsert(ctx context.Context, ref, holder string, p EventInsertParams) (Event, error) {
	var ev Event
	err := s.InTx(ctx, func(q *Queries) error {
		var held bool
		err := q.db.QueryRow(ctx, `SELECT holder = $2 AND expires > now() FROM attune.sensor_lease WHERE sensor_ref = $1 FOR SHARE`,
			ref, holder).Scan(&held)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("check lease of sensor %s: %w", ref, translate(err))
		}
		if !held {
			return fmt.Errorf("insert event of sensor %s: %w", ref, ErrLeaseLost)
		}
		p.Source = ref
		ev, err = q.EventInsert(ctx, p)
		return err
	})
	return ev, err
}

// SensorView is a sensor with what its holder reports, as the API shows it. Status is
// disabled for a sensor not enabled, stopped when no replica holds a live lease (its last
// holder's restarts and last error stay), else its holder's: starting, running or backoff.
type SensorView struct {
	Sensor
	Status    string     `json:"status"`
	Holder    *string    `json:"holder"`
	PID       *int       `json:"pid"`
	Restarts  int        `json:"restarts"`
	LastError string     `json:"last_error"`
	StartedAt *time.Time `json:"started_at"`
}

// sensorStatus is a sensor's status as SensorView tells it.
const sensorStatus = `CASE WHEN NOT s.enabled THEN 'disabled' WHEN l.expires > now() THEN l.status ELSE 'stopped' END`

const sensorViewColumns = `s.id, s.ref, s.pack_ref, s.label, s.description, s.entry_point, s.trigger_refs, s.parameters, s.config,
	s.enabled, s.created, s.updated,
	` + sensorStatus + `,
	CASE WHEN l.expires > now() THEN l.holder END, CASE WHEN l.expires > now() THEN l.pid END,
	coalesce(l.restarts, 0), coalesce(l.last_error, ''), CASE WHEN l.expires > now() THEN l.started_at END`

const sensorViewFrom = `FROM attune.sensor s LEFT JOIN attune.sensor_lease l ON l.sensor_ref = s.ref`

func scanSensorView(row pgx.Row) (SensorView, error) {
	var v SensorView
	err := row.Scan(&v.ID, &v.Ref, &v.PackRef, &v.Label, &v.Description, &v.EntryPoint, &v.TriggerRefs, &v.Parameters, &v.Config,
		&v.Enabled, &v.Created, &v.Updated, &v.Status, &v.Holder, &v.PID, &v.Restarts, &v.LastError, &v.StartedAt)
	return v, err
}

// SensorGetByRef returns sensor ref with its state.
func (q *Queries) SensorGetByRef(ctx context.Context, ref string) (SensorView, error) {
	v, err := scanSensorView(q.db.QueryRow(ctx, `SELECT `+sensorViewColumns+` `+sensorViewFrom+` WHERE s.ref = $1`, ref))
	if err != nil {
		return SensorView{}, fmt.Errorf("get sensor %s: %w", ref, translate(err))
	}
	return v, nil
}

// SensorList returns a page of sensors with their state in ref order, optionally of one pack.
func (q *Queries) SensorList(ctx context.Context, packRef string, page Page) ([]SensorView, int, error) {
	return list(ctx, q.db, "sensors", sensorViewFrom+` WHERE ($1 = '' OR s.pack_ref = $1)`, sensorViewColumns, `s.ref`, page,
		scanSensorView, packRef)
}

// SensorSetEnabled enables or disables sensor ref; the sensor role starts or stops it.
func (q *Queries) SensorSetEnabled(ctx context.Context, ref string, enabled bool) error {
	_, _, err := auditedIf(ctx, q, func(q *Queries) (struct{}, bool, error) {
		changed, err := q.sensorSetEnabled(ctx, ref, enabled)
		return struct{}{}, changed, err
	},
		func(struct{}) auditRecord { return auditRecord{enableKind("sensor", enabled), "sensor", ref, nil} })
	return err
}

// sensorSetEnabled makes SensorSetEnabled's change, and reports whether there was one;
// SensorSetEnabled records it.
func (q *Queries) sensorSetEnabled(ctx context.Context, ref string, enabled bool) (bool, error) {
	tag, err := q.db.Exec(ctx, `UPDATE attune.sensor SET enabled = $2 WHERE ref = $1 AND enabled <> $2`, ref, enabled)
	if err != nil {
		return false, fmt.Errorf("set sensor %s enabled: %w", ref, translate(err))
	}
	if tag.RowsAffected() > 0 {
		return true, nil
	}
	var exists bool
	if err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM attune.sensor WHERE ref = $1)`, ref).Scan(&exists); err != nil {
		return false, fmt.Errorf("set sensor %s enabled: %w", ref, translate(err))
	}
	if !exists {
		return false, fmt.Errorf("set sensor %s enabled: %w", ref, ErrNotFound)
	}
	return false, nil
}

// SensorTokenHolder is what a live sensor token stands for: a sensor whose lease is held by
// the replica that gave the token to its process.
type SensorTokenHolder struct {
	SensorRef string
	PackRef   string
}

// SensorTokenHolderBySum returns the sensor whose running process holds the token that hashes
// to sum, while its lease lasts; anything else is ErrNotFound alike.
func (q *Queries) SensorTokenHolderBySum(ctx context.Context, sum []byte) (SensorTokenHolder, error) {
	var h SensorTokenHolder
	err := q.db.QueryRow(ctx, `SELECT s.ref, s.pack_ref FROM attune.sensor_lease l JOIN attune.sensor s ON s.ref = l.sensor_ref
		WHERE l.token_hash = $1 AND l.expires > now()`, sum).Scan(&h.SensorRef, &h.PackRef)
	if err != nil {
		return SensorTokenHolder{}, fmt.Errorf("look up sensor token: %w", translate(err))
	}
	return h, nil
}
