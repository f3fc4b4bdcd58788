package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// errorBody is the one error shape: {"error": {"code": ..., "message": ..., "field": ...}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field is the body's field at fault, such as action_params.count, when one is: a form
	// shows the message beside it.
	Field string `json:"field,omitempty"`
}

// Error is an error with the HTTP status and code it answers with, and the body's field at
// fault when the problem is one field's.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

func forbidden(format string, args ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

// fieldError is a 400 about the body's field, a dotted path such as trigger_params.url; the
// message names the field too, for readers of the message alone.
func fieldError(field, format string, args ...any) *Error {
	e := badRequest(format, args...)
	e.Field = field
	return e
}

// ErrorHandler answers every error, the router's own included, in the one error shape, and
// maps store errors onto their statuses. Unexpected errors are logged and answered without
// their details.
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, detail := classify(err)
		if status >= http.StatusInternalServerError {
			logger.ErrorContext(c.Request().Context(), "request failed",
				"method", c.Request().Method, "path", c.Path(), "err", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, errorBody{Error: detail})
	}
}

func classify(err error) (int, errorDetail) {
	var apiErr *Error
	var httpErr *echo.HTTPError
	switch {
	case errors.As(err, &apiErr):
		return apiErr.Status, errorDetail{Code: apiErr.Code, Message: apiErr.Message, Field: apiErr.Field}
	case errors.As(err, &httpErr):
		return httpErr.Code, errorDetail{Code: codeFor(httpErr.Code), Message: fmt.Sprint(httpErr.Message)}
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, errorDetail{Code: "not_found", Message: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, errorDetail{Code: "conflict", Message: err.Error()}
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, errorDetail{Code: "unavailable", Message: "the database is unavailable; retry later"}
	default:
		return http.StatusInternalServerError, errorDetail{Code: "internal", Message: "internal error"}
	}
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	default:
		if status >= 500 {
			return "internal"
		}
		return "error"
	}
}

// page is a parsed ?page=&per_page= (page_size is accepted too).
type page struct {
	Number int
	Size   int
}

const (
	defaultPageSize = 50
	maxPageSize     = 100
)

func parsePage(c echo.Context) (page, error) {
	p := page{Number: 1, Size: defaultPageSize}
	if v := c.QueryParam("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, badRequest("invalid page %q: want a whole number from 1", v)
		}
		p.Number = n
	}
	for _, name := range []string{"per_page", "page_size"} {
		v := c.QueryParam(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return p, badRequest("invalid %s %q: want a whole number from 1 to %d", name, v, maxPageSize)
		}
		p.Size = n
	}
	// An offset past what PostgreSQL takes would fail the query as a 500; no list is that long.
	if p.Number-1 > maxOffset/p.Size {
		return p, badRequest("invalid page %d: beyond any list (at most %d items are skipped)", p.Number, maxOffset)
	}
	return p, nil
}

// maxOffset bounds how many items a page may skip.
const maxOffset = 1 << 30

func (p page) store() store.Page {
	return store.Page{Limit: p.Size, Offset: (p.Number - 1) * p.Size}
}

type pagination struct {
	Page       int `json:"page"`
	PageSize   int `json:"page_size"`
	TotalItems int `json:"total_items"`
	TotalPages int `json:"total_pages"`
}

type listBody[T any] struct {
	Data       []T        `json:"data"`
	Pagination pagination `json:"pagination"`
}

func listResponse[T any](items []T, p page, total int) listBody[T] {
	return listBody[T]{
		Data: items,
		Pagination: pagination{
			Page:       p.Number,
			PageSize:   p.Size,
			TotalItems: total,
			TotalPages: (total + p.Size - 1) / p.Size,
		},
	}
}
