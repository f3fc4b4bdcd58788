package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// EnvelopeVersion is the version of the envelope layout; consumers reject what they cannot read.
const EnvelopeVersion = "1.0"

// Message is the envelope every message travels in. Payload carries ids and a small snapshot;
// the store stays the source of truth and consumers re-read the rows they act on.
type Message struct {
	ID            string          `json:"message_id"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Type          Type            `json:"message_type"`
	Version       string          `json:"version"`
	Timestamp     time.Time       `json:"timestamp"`
	Headers       Headers         `json:"headers"`
	Payload       json.RawMessage `json:"payload"`
	// Target completes the routing key of targeted types (the worker a dispatch is for).
	// It rides in the envelope so that a redelivered or dead-lettered message still says
	// where it was going.
	Target string `json:"target,omitempty"`
}

// Headers carry delivery metadata that is not part of the payload.
type Headers struct {
	SourceService string `json:"source_service,omitempty"`
	RetryCount    int    `json:"retry_count"`
	// OutageRetries counts the requeues caused by a dependency being away (IsTransient);
	// they pace the retries but do not count toward the message's attempts. OutageSince is
	// when the first of them happened: past Options.MaxOutage the message is dead-lettered.
	OutageRetries int        `json:"outage_retries,omitempty"`
	OutageSince   *time.Time `json:"outage_since,omitempty"`
	TraceID       string     `json:"trace_id,omitempty"`
}

// Payload is implemented by every typed message body.
type Payload interface {
	MessageType() Type
}

// Targeted is implemented by payloads whose routing key names a recipient.
type Targeted interface {
	Payload
	MessageTarget() string
}

// traced is a payload sent on behalf of a trace: its envelope's Headers.TraceID names the
// trace, and the payload travels as it is. InTrace makes one.
type traced struct {
	Payload
	TraceID string
}

// InTrace returns p to be sent as part of trace traceID (none when empty): the envelope that
// NewMessage, Send and every Sender wrap it in carries the trace in Headers.TraceID.
func InTrace(traceID string, p Payload) Payload {
	if traceID == "" {
		return p
	}
	return traced{Payload: p, TraceID: traceID}
}

// NewMessage wraps a typed payload in a fresh envelope with its own id and timestamp; the
// trace of a payload from InTrace goes in its headers.
func NewMessage(p Payload) (Message, error) {
	var trace string
	if t, ok := p.(traced); ok {
		p, trace = t.Payload, t.TraceID
	}
	body, err := json.Marshal(p)
	if err != nil {
		return Message{}, fmt.Errorf("encode %s payload: %w", p.MessageType(), err)
	}
	m := Message{
		ID:        uuid.NewString(),
		Type:      p.MessageType(),
		Version:   EnvelopeVersion,
		Timestamp: time.Now().UTC(),
		Headers:   Headers{TraceID: trace},
		Payload:   body,
	}
	if t, ok := p.(Targeted); ok {
		m.Target = t.MessageTarget()
	}
	if _, err := m.Route(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Decode unmarshals the payload of m into a T after checking that m carries a T.
func Decode[T Payload](m Message) (T, error) {
	var p T
	if m.Type != p.MessageType() {
		return p, Permanent(fmt.Errorf("decode message %s: type is %s, want %s", m.ID, m.Type, p.MessageType()))
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return p, Permanent(fmt.Errorf("decode %s message %s: %w", m.Type, m.ID, err))
	}
	return p, nil
}

// Marshal encodes the envelope for the wire.
func (m Message) Marshal() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message %s: %w", m.Type, m.ID, err)
	}
	return b, nil
}

// Unmarshal decodes an envelope read from the wire. A body that is not an envelope can never
// be handled, so the error is permanent.
func Unmarshal(body []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, Permanent(fmt.Errorf("decode envelope: %w", err))
	}
	if m.Version != EnvelopeVersion {
		return m, Permanent(fmt.Errorf("decode envelope %s: unsupported version %q", m.ID, m.Version))
	}
	if _, ok := routes[m.Type]; !ok {
		return m, Permanent(fmt.Errorf("decode envelope %s: unknown message type %q", m.ID, m.Type))
	}
	return m, nil
}

// Send wraps each payload in a fresh envelope and publishes them together, so that their
// confirms are awaited once for the lot.
func Send(ctx context.Context, p Publisher, payloads ...Payload) error {
	if len(payloads) == 0 {
		return nil
	}
	msgs := make([]Message, 0, len(payloads))
	for _, pl := range payloads {
		m, err := NewMessage(pl)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return p.Publish(ctx, msgs...)
}
