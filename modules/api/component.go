package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// What the writes of actions, triggers and rules share: a component sent to the API has the
// shape of its file in a pack, plus pack_ref naming the pack it joins (a file's pack is the
// directory it sits in). The pack must be registered already, and must not be core.

func conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf(format, args...)}
}

// notFound answers a store ErrNotFound as 404 with the message given, and any other error as
// it is.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
	}
	return err
}

// invalid answers a pack validation error, which names the field, as 400 with that field,
// and any other error as it is. An error in another file (a workflow's definition) names a
// field of that file, not of the body: the message says it.
func invalid(err error) error {
	var perr *pack.Error
	if errors.As(err, &perr) {
		if perr.File != "" {
			return badRequest("%v", err)
		}
		return fieldError(perr.Field, "%v", err)
	}
	return err
}

// stillUsed answers a deletion the store refused because others still use the row as 409,
// saying who and what to do; any other error as it is.
func stillUsed(err error, todo string) error {
	var inUse *store.InUseError
	if errors.As(err, &inUse) {
		return conflict("%v: %s", inUse, todo)
	}
	return err
}

// coreRefused is the answer to any change of the core pack: every process registers the
// embedded core pack at start, which would undo the change without a word.
func coreRefused(what string) *Error {
	return conflict("%s belongs to the built-in %s pack, which every process registers again at start; it cannot be changed through the API",
		what, pack.CoreRef)
}

// packOf is the pack a component joins, and the body's field that named it (pack_ref, or ref
// whose pack part it is): a pack that does not exist is that field's fault.
type packOf struct {
	Ref   string
	Field string
}

// requestPack works out the pack a component sent to the API joins: pack_ref, else the pack
// part of its ref. A ref in another pack than pack_ref is the validators' to refuse.
func requestPack(ref, packRef string) (packOf, error) {
	if packRef != "" {
		return packOf{packRef, "pack_ref"}, nil
	}
	if ref == "" {
		return packOf{}, fieldError("pack_ref", "pack_ref: required when the body gives a name and no ref")
	}
	refPack, _, ok := strings.Cut(ref, ".")
	if !ok {
		return packOf{}, fieldError("ref", "ref: %q: want <pack>.<name>", ref)
	}
	if err := pack.CheckPackRef(refPack); err != nil {
		return packOf{}, fieldError("ref", "ref: %q: %v", ref, err)
	}
	return packOf{refPack, "ref"}, nil
}

// storedPack is the pack of a component already stored, for an update.
func storedPack(packRef string) packOf { return packOf{packRef, "pack_ref"} }

// targetPack returns the registered pack a component joins; one that does not exist is the
// fault of the body's field that named it.
func (m *Module) targetPack(ctx context.Context, of packOf) (store.Pack, error) {
	p, err := m.deps.Store.PackGetByRef(ctx, of.Ref)
	if errors.Is(err, store.ErrNotFound) {
		return store.Pack{}, fieldError(of.Field, "%s: no pack %q; register it first (POST /packs/register)", of.Field, of.Ref)
	}
	return p, err
}

// sameRef refuses a body whose ref or pack_ref disagrees with the component the URL names:
// an update does not rename a component or move it to another pack.
func sameRef(urlRef, bodyRef, currentPack, bodyPack string) error {
	if bodyRef != "" && bodyRef != urlRef {
		return fieldError("ref", "ref: %q differs from %q in the URL; create the new one and delete the old", bodyRef, urlRef)
	}
	if bodyPack != "" && bodyPack != currentPack {
		return fieldError("pack_ref", "pack_ref: %q differs from %q, the pack of %s; create the new one and delete the old", bodyPack, currentPack, urlRef)
	}
	return nil
}

// createIn resolves the pack a create request of noun puts it in, and refuses the built-in
// one.
func createIn(noun, ref, packRef string) (packOf, error) {
	p, err := requestPack(ref, packRef)
	if err != nil {
		return packOf{}, err
	}
	if p.Ref == pack.CoreRef {
		return packOf{}, coreRefused("the " + noun)
	}
	return p, nil
}

// refuseExisting is 409 when get finds ref: a create never replaces.
func refuseExisting[C any](ctx context.Context, get func(context.Context, string) (C, error), noun, ref string) error {
	_, err := get(ctx, ref)
	switch {
	case err == nil:
		return conflict("%s %s exists already; PUT /%ss/%s changes it", noun, ref, noun, ref)
	case errors.Is(err, store.ErrNotFound):
		return nil
	}
	return err
}

// changeable says whether the noun ref, of pack currentPack, may change as a body naming
// bodyRef in bodyPack asks: never one of the built-in pack, never renamed or moved.
func changeable(noun, ref, currentPack, bodyRef, bodyPack string) error {
	if currentPack == pack.CoreRef {
		return coreRefused(noun + " " + ref)
	}
	return sameRef(ref, bodyRef, currentPack, bodyPack)
}
