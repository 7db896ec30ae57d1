package workers

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"

	"github.com/mailscope/mailscope/contracts"
)

// webhookRequest builds the body of the request for m (evaluated as
// out) to ep: the summary with the worker's text limit, the header
// fields, and the attachments' content inline while it fits
// ep.AttachmentLimit.
func webhookRequest(ctx context.Context, m *Mail, out *contracts.Outcome, ep WebhookEndpoint, textLimit int) *contracts.WebhookRequest {
	return &contracts.WebhookRequest{
		Schema:      contracts.WebhookSchema,
		ID:          out.ID,
		Endpoint:    ep.Name,
		MessageID:   out.MessageID,
		Envelope:    out.Envelope,
		ReceivedAt:  out.ReceivedAt,
		Attempt:     out.Attempt,
		Auth:        out.Auth,
		Flags:       out.Flags,
		MailContent: mailContent(ctx, m, textLimit, ep.AttachmentLimit),
		Worker:      out.Worker,
		TraceID:     out.TraceID,
	}
}

// mailContent is m as a receiver gets it: the summary with the worker's
// text limit, the header fields, and the attachments' content inline
// while it fits attachmentLimit bytes in all (negative: none).
func mailContent(ctx context.Context, m *Mail, textLimit, attachmentLimit int) contracts.MailContent {
	r := contracts.MailContent{Headers: []contracts.HeaderField{}, Attachments: []contracts.WebhookAttachment{}}
	fs := m.Header.Fields()
	for fs.Next() {
		if len(r.Headers) == contracts.WebhookMaxHeaders {
			r.HeadersTruncated = true
			break
		}
		v := strings.NewReplacer("\r\n", "", "\r", "", "\n", "").Replace(fs.Value())
		if len(v) > contracts.WebhookMaxHeaderValue {
			v = strings.ToValidUTF8(v[:contracts.WebhookMaxHeaderValue], "")
			r.HeadersTruncated = true
		}
		r.Headers = append(r.Headers, contracts.HeaderField{Name: fs.Key(), Value: v})
	}
	budget := max(attachmentLimit, 0)
	r.Summary = summarize(ctx, m, textLimit, func(p *part, e *message.Entity) int {
		name, ct := attachmentNames(p)
		a := contracts.WebhookAttachment{Filename: name, ContentType: ct}
		if e == nil {
			e, _ = message.New(p.h, p.body) // a plain part: no error
		}
		// Read what may fit, then count the rest.
		content, err := io.ReadAll(io.LimitReader(e.Body, int64(budget)+1))
		rest, _ := io.Copy(io.Discard, e.Body)
		a.Size = len(content) + int(rest)
		switch {
		case err != nil:
			a.Omitted = "not readable: " + err.Error()
		case a.Size > budget:
			a.Omitted = fmt.Sprintf("larger than the attachment limit (%d bytes left of %d)", budget, max(attachmentLimit, 0))
		default:
			a.Content = content
			budget -= a.Size
		}
		r.Attachments = append(r.Attachments, a)
		return a.Size
	})
	return r
}

// attachmentNames returns the file name and content type of a non-text
// part as the summary lists them.
func attachmentNames(p *part) (name, ct string) {
	ct = p.mediaType
	if ct == "" {
		ct = "text/plain"
	}
	_, dparams, _ := p.h.ContentDisposition()
	name, ok := dparams["filename"]
	if !ok {
		name = p.params["name"]
	}
	return name, ct
}
