package seal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// SealValue seals a JSON value (its compact text) and returns the token.
func (r *Keyring) SealValue(v json.RawMessage) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return "", fmt.Errorf("seal value: %w", err)
	}
	return r.Seal(buf.Bytes())
}

// OpenValue opens a token that SealValue made and returns the JSON value.
func (r *Keyring) OpenValue(token string) (json.RawMessage, error) {
	plain, err := r.Open(token)
	if err != nil {
		return nil, err
	}
	if !json.Valid(plain) {
		return nil, fmt.Errorf("open value: %w", ErrMalformed)
	}
	return plain, nil
}

// SealParams returns the JSON object params with the value of each member named in names
// sealed into a token. A value that already holds a token is left as it is: what is secret
// in it is sealed (a template placed a sealed key in it), and the rest was never secret.
// params that is not an object is returned as it is. Values are sealed with SealSynthetic:
// an equal value gives an equal token, so that executions grouped by a secret parameter stay
// grouped.
func (r *Keyring) SealParams(params json.RawMessage, names []string) (json.RawMessage, error) {
	if len(names) == 0 || len(params) == 0 {
		return params, nil
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(params, &values); err != nil || values == nil {
		return params, nil // not an object: nothing is named in it
	}
	changed := false
	for _, name := range names {
		v, ok := values[name]
		if !ok || Contains(string(v)) || string(v) == "null" {
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, fmt.Errorf("seal parameter %s: %w", name, err)
		}
		token := r.SealSynthetic(buf.Bytes())
		values[name], changed = json.RawMessage(`"`+token+`"`), true
	}
	if !changed {
		return params, nil
	}
	out, err := json.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("seal parameters: %w", err)
	}
	return out, nil
}

// Names returns the members of the JSON object params whose value holds a token anywhere:
// the parameters to mask however they came to be secret.
func Names(params json.RawMessage) []string {
	if !Contains(string(params)) {
		return nil
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(params, &values); err != nil {
		return nil
	}
	var names []string
	for name, v := range values {
		if Contains(string(v)) {
			names = append(names, name)
		}
	}
	return names
}

// OpenJSON returns doc with every token in its strings opened: a string that is exactly one
// token becomes the value that was sealed, whatever its type; a token inside a longer string
// becomes the text of the value (a string's characters, anything else its JSON). It also
// returns the texts it opened, for the caller to scrub from what it shows. A token it cannot
// open is an error naming the key; nothing is half-opened.
func (r *Keyring) OpenJSON(doc json.RawMessage) (json.RawMessage, []string, error) {
	if !Contains(string(doc)) {
		return doc, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("open sealed values: %w", err)
	}
	o := opener{r: r}
	v, err := o.walk(v)
	if err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("open sealed values: %w", err)
	}
	return out, o.opened, nil
}

type opener struct {
	r      *Keyring
	opened []string
}

func (o *opener) walk(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			w, err := o.walk(e)
			if err != nil {
				return nil, err
			}
			x[k] = w
		}
	case []any:
		for i, e := range x {
			w, err := o.walk(e)
			if err != nil {
				return nil, err
			}
			x[i] = w
		}
	case string:
		if !Contains(x) {
			return x, nil
		}
		if IsToken(x) {
			plain, err := o.r.OpenValue(x)
			if err != nil {
				return nil, err
			}
			o.opened = append(o.opened, text(plain))
			var value any
			dec := json.NewDecoder(bytes.NewReader(plain))
			dec.UseNumber()
			if err := dec.Decode(&value); err != nil {
				return nil, fmt.Errorf("open sealed value: %w", err)
			}
			return value, nil
		}
		return replaceTokens(x, func(id, payload string) (string, error) {
			plain, err := o.r.open(id, payload)
			if err != nil {
				return "", err
			}
			t := text(plain)
			o.opened = append(o.opened, t)
			return t, nil
		})
	}
	return v, nil
}

// text is how a sealed JSON value reads inside a longer string: a string's characters,
// anything else its JSON.
func text(plain []byte) string {
	var s string
	if err := json.Unmarshal(plain, &s); err == nil {
		return s
	}
	return strings.TrimSpace(string(plain))
}

// Reseal returns s (any text: a JSON document, a string) with every token sealed under a key
// other than the current one opened and sealed again under the current key, and whether it
// changed anything. Tokens need no escaping in JSON, so the text is rewritten in place.
func (r *Keyring) Reseal(s string) (string, bool, error) {
	return r.reseal(s, r.Seal)
}

// ResealSynthetic is Reseal sealing again with SealSynthetic, for text whose tokens are
// compared as they are: a secret parameter sealed with SealParams, the group key of a policy
// that groups by it, and the copies of them. Equal values then stay equal after a rotation,
// and equal to what SealParams gives them afterwards.
func (r *Keyring) ResealSynthetic(s string) (string, bool, error) {
	return r.reseal(s, func(plain []byte) (string, error) { return r.SealSynthetic(plain), nil })
}

func (r *Keyring) reseal(s string, seal func(plain []byte) (string, error)) (string, bool, error) {
	changed := false
	out, err := replaceTokens(s, func(id, payload string) (string, error) {
		tok := token(id, payload)
		if id == r.current {
			return tok, nil
		}
		plain, err := r.open(id, payload)
		if err != nil {
			return "", err
		}
		changed = true
		return seal(plain)
	})
	if err != nil {
		return s, false, err
	}
	return out, changed, nil
}
