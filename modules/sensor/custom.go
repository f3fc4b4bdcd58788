package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/pack/cache"
	"github.com/attune-go/attune/store"
)

// Sensors tunes the supervision of custom sensors.
type Sensors struct {
	// Holder names this replica in the sensors' leases; unique per process. Default
	// <hostname>-<pid>.
	Holder string
	// LeaseTTL is how long a lease lasts unless renewed: how long a sensor whose replica died
	// waits before another replica starts it. Renewed every fifth of it. Default 10s.
	LeaseTTL time.Duration
	// ScanInterval is how often the sensors wanted are read again, and lapsed leases looked
	// for, besides every change to rules or sensors. Default 1s.
	ScanInterval time.Duration
	// BackoffMin and BackoffMax bound the wait before a sensor that ended is started again:
	// BackoffMin after its first end, doubled after each end up to BackoffMax, and back to
	// BackoffMin once it ran StableAfter. Defaults 1s, 60s, 60s.
	BackoffMin, BackoffMax, StableAfter time.Duration
	// APIURL is given to sensors as ATTUNE_API_URL, with their token as ATTUNE_TOKEN.
	APIURL string
	// PackCache is the directory of this replica's cache of pack versions, which sensors run
	// from; one per process. Default attune/sensor-packs/<Holder> under the user's cache
	// directory, removed when the module stops.
	PackCache string
}

const (
	// stderrKeep is how many last lines of a sensor's stderr its last error quotes.
	stderrKeep = 3
	// releaseTimeout bounds giving a lease back after its sensor stopped.
	releaseTimeout = 5 * time.Second
)

func (c *Sensors) defaults() {
	if c.Holder == "" {
		host, _ := os.Hostname()
		c.Holder = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.LeaseTTL, 10*time.Second)
	set(&c.ScanInterval, time.Second)
	set(&c.BackoffMin, time.Second)
	set(&c.BackoffMax, time.Minute)
	set(&c.StableAfter, time.Minute)
	if c.PackCache == "" {
		c.PackCache = cache.DefaultDir("sensor-packs", c.Holder)
	}
}

// renewEvery is how often a holder renews its leases. A renewal that fails, or takes longer
// than this, stops the sensor at once; with the kill grace (as long again) the sensor has
// stopped at most three of these after the last renewal that held, two before its lease ends.
func (c *Sensors) renewEvery() time.Duration { return c.LeaseTTL / 5 }

// held is a sensor this replica holds the lease of and runs.
type held struct {
	key  string
	stop context.CancelFunc
	done chan struct{}
}

func runKey(s store.SensorRun) string {
	// The pack's version is part of it: a new version restarts the sensor from that version.
	return strings.Join([]string{s.EntryPoint, s.PackPath, s.PackVersion, string(s.Config), strings.Join(s.TriggerRefs, ","),
		s.Updated.Format(time.RFC3339Nano)}, "\x00")
}

// supervise keeps running, on this replica, the wanted sensors whose lease it holds or can
// take, following changes to rules and sensors, until ctx ends. Every sensor it ran has
// stopped and its lease is released when it returns.
func (m *Module) supervise(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	listenCtx, stopListening := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		_ = m.deps.Store.Listen(listenCtx, store.ChannelRulesChanged, m.deps.Logger, func(ok bool) {
			if ok {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		})
	}()
	defer func() {
		stopListening()
		<-listening
	}()
	running := make(map[string]*held)
	defer func() {
		for _, h := range running {
			h.stop()
		}
		for _, h := range running {
			<-h.done
		}
	}()
	scan := time.NewTicker(m.sensors.ScanInterval)
	defer scan.Stop()
	for {
		wanted, err := m.deps.Store.SensorListWanted(ctx)
		switch {
		case err == nil:
			m.syncSensors(ctx, running, wanted)
		case ctx.Err() == nil:
			// The sensors running keep running while their leases can be renewed.
			m.deps.Logger.WarnContext(ctx, "load sensors", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-scan.C:
		}
	}
}

// syncSensors stops the sensors no longer wanted (or changed, to start them anew) and those
// that stopped on their own (a lost lease), and takes the leases of wanted sensors nobody
// holds.
func (m *Module) syncSensors(ctx context.Context, running map[string]*held, wanted []store.SensorRun) {
	want := make(map[string]store.SensorRun, len(wanted))
	for _, s := range wanted {
		want[s.Ref] = s
	}
	var stopping []*held
	for ref, h := range running {
		select {
		case <-h.done:
			delete(running, ref)
			continue
		default:
		}
		if s, ok := want[ref]; !ok || runKey(s) != h.key {
			h.stop()
			stopping = append(stopping, h)
			delete(running, ref)
		}
	}
	for _, h := range stopping {
		<-h.done
	}
	for ref, s := range want {
		if _, ok := running[ref]; ok {
			continue
		}
		token, ok, err := m.deps.Store.SensorLeaseTake(ctx, ref, m.sensors.Holder, m.sensors.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				m.deps.Logger.WarnContext(ctx, "take sensor lease", "sensor", ref, "err", err)
			}
			continue
		}
		if !ok {
			continue
		}
		hctx, stop := context.WithCancel(ctx)
		h := &held{key: runKey(s), stop: stop, done: make(chan struct{})}
		running[ref] = h
		go func() {
			defer close(h.done)
			m.hold(hctx, s, token)
		}()
	}
}

// hold runs sensor s while this replica holds its lease: renewing it, and restarting the
// sensor with backoff when it ends, until ctx ends or the lease is lost. The process has
// stopped and the lease is released when it returns.
func (m *Module) hold(ctx context.Context, s store.SensorRun, token string) {
	log := m.deps.Logger.With("sensor", s.Ref)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		m.renew(ctx, s.Ref, log, cancel)
	}()
	log.InfoContext(ctx, "sensor lease taken", "holder", m.sensors.Holder)
	m.restartLoop(ctx, s, token, log)
	cancel()
	<-renewed
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer rcancel()
	if err := m.deps.Store.SensorLeaseRelease(rctx, s.Ref, m.sensors.Holder); err != nil {
		log.WarnContext(ctx, "release sensor lease; it lapses on its own", "err", err)
	}
	log.InfoContext(ctx, "sensor stopped")
}

// renew renews the lease of sensor ref every renewEvery until ctx ends; a renewal that fails
// or does not answer in time cancels the sensor through lost.
func (m *Module) renew(ctx context.Context, ref string, log *slog.Logger, lost context.CancelFunc) {
	every := m.sensors.renewEvery()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		err := m.deps.Store.SensorLeaseRenew(rctx, ref, m.sensors.Holder, m.sensors.LeaseTTL)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				// Another replica may take the lease once it lapses: the sensor must be gone
				// by then, so it stops now rather than hope the next renewal holds.
				log.WarnContext(ctx, "sensor lease not renewed; stopping the sensor", "err", err)
			}
			lost()
			return
		}
	}
}

// restartLoop runs the sensor's process again and again, waiting longer after each end, until
// ctx ends.
func (m *Module) restartLoop(ctx context.Context, s store.SensorRun, token string, log *slog.Logger) {
	checker, err := newLineChecker(s.TriggerRefs, s.Outputs)
	restarts, delay := 0, m.sensors.BackoffMin
	for ctx.Err() == nil {
		var started time.Time
		var end string
		if err == nil {
			started = time.Now()
			end, err = m.runOnce(ctx, s, token, checker, restarts, log)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			end, err = err.Error(), nil
		}
		if !started.IsZero() && time.Since(started) >= m.sensors.StableAfter {
			delay = m.sensors.BackoffMin
		}
		restarts++
		log.WarnContext(ctx, "sensor ended; starting it again", "reason", end, "restarts", restarts, "retry_in", delay)
		if m.setState(ctx, s.Ref, store.SensorState{Status: "backoff", Restarts: restarts, LastError: end}, log) != nil {
			return
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, m.sensors.BackoffMax)
		checker, err = newLineChecker(s.TriggerRefs, s.Outputs)
	}
}

// runOnce runs the sensor's process once, turning its lines into events, and returns how it
// ended, with the last lines of its stderr.
func (m *Module) runOnce(ctx context.Context, s store.SensorRun, token string, checker *lineChecker, restarts int, log *slog.Logger) (string, error) {
	packDir, release, err := m.packDir(ctx, s)
	if err != nil {
		return "", err
	}
	defer release()
	errTail := &tail{keep: stderrKeep}
	limiter := &logLimiter{burst: 10, window: time.Minute}
	p := &proc{
		path:  ScriptPath(packDir, s.EntryPoint),
		dir:   ScriptPath(packDir, ""),
		env:   m.sensorEnv(s, token),
		grace: m.sensors.renewEvery(),
		started: func(pid int) {
			now := time.Now()
			log.InfoContext(ctx, "sensor started", "pid", pid)
			_ = m.setState(ctx, s.Ref, store.SensorState{Status: "running", Restarts: restarts, StartedAt: &now, PID: &pid}, log)
		},
		stdout: func(line []byte, tooLong bool) {
			m.emit(ctx, s.Ref, checker, line, tooLong, limiter, log)
		},
		stderr: func(line string) {
			// A sensor that traces its commands (set -x) prints its token with them: the
			// line goes to the log and, as the last error, to every reader of the API.
			if token != "" {
				line = strings.ReplaceAll(line, token, pack.Mask)
			}
			errTail.add(line)
			log.DebugContext(ctx, "sensor stderr", "line", bounded(line, 300))
		},
	}
	end, err := p.run(ctx)
	if err != nil {
		return "", err
	}
	if t := errTail.String(); t != "" {
		end += "; stderr: " + t
	}
	return end, nil
}

// packDir is the directory of the files of sensor s's pack: this replica's copy of the pack's
// current version, fetched once; the directory the pack was registered from only for a pack
// with no version. release ends the run's hold on the copy.
func (m *Module) packDir(ctx context.Context, s store.SensorRun) (string, func(), error) {
	if s.PackVersion == "" {
		if s.PackPath == "" {
			return "", nil, fmt.Errorf("pack %s has no version and no directory on disk", s.PackRef)
		}
		return s.PackPath, func() {}, nil
	}
	return m.packs.Acquire(ctx, s.PackRef, s.PackVersion)
}

// sensorEnv is the sensor's environment: this process's, without any ATTUNE_* variable (the
// server's configuration holds the database's and broker's passwords), plus what the sensor
// is told.
func (m *Module) sensorEnv(s store.SensorRun, token string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ATTUNE_") })
	config := string(s.Config)
	if config == "" {
		config = "{}"
	}
	return append(env,
		"ATTUNE_SENSOR="+s.Ref,
		"ATTUNE_SENSOR_CONFIG="+config,
		"ATTUNE_API_URL="+m.sensors.APIURL,
		"ATTUNE_TOKEN="+token,
	)
}

// emit records the event a line asks for, fenced by the lease, and announces it; a bad line
// is logged with the reason and skipped.
func (m *Module) emit(ctx context.Context, ref string, checker *lineChecker, line []byte, tooLong bool, limiter *logLimiter, log *slog.Logger) {
	if len(line) == 0 && !tooLong {
		return
	}
	var ev emitted
	var err error
	if tooLong {
		err = fmt.Errorf("line longer than %d bytes", maxLine)
	} else {
		ev, err = checker.check(line)
	}
	if err != nil {
		if ok, suppressed := limiter.allow(time.Now()); ok {
			log.WarnContext(ctx, "sensor line skipped", "reason", bounded(err.Error(), 500), "suppressed_before", suppressed)
		}
		return
	}
	rec, err := m.deps.Store.SensorEventInsert(ctx, ref, m.sensors.Holder, store.EventInsertParams{TriggerRef: ev.Trigger, Payload: ev.Payload})
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "sensor event not recorded", "trigger", ev.Trigger, "err", err)
		}
		return
	}
	m.announceEvent(ctx, rec, "", log)
}

// setState records the sensor's state; a lost lease is reported, and the caller stops.
func (m *Module) setState(ctx context.Context, ref string, st store.SensorState, log *slog.Logger) error {
	err := m.deps.Store.SensorStateSet(ctx, ref, m.sensors.Holder, st)
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		return err
	case err != nil && ctx.Err() == nil:
		log.WarnContext(ctx, "record sensor state", "err", err)
	}
	return nil
}
