package contracts

import (
	"crypto/sha256"
	"encoding/base32"
	"hash"
	"slices"
)

// contentIDVersion is mixed into every content id, so that a change of
// the derivation can never collide with ids made before it.
const contentIDVersion = "mailscope-content-id-v1\n"

// ContentHash derives a mail's id from its envelope and its bytes (see
// [ContentID]); write the raw mail into it, in any number of writes, then
// call ID. It lets a mail too large to hold in memory be named while it
// streams.
type ContentHash struct{ h hash.Hash }

// NewContentHash starts the content id of a mail from mailFrom (empty for
// "<>") to rcptTo. The order of the recipients does not matter.
func NewContentHash(mailFrom string, rcptTo []string) *ContentHash {
	h := sha256.New()
	h.Write([]byte(contentIDVersion))
	h.Write([]byte(mailFrom))
	h.Write([]byte{0})
	rcpts := slices.Clone(rcptTo)
	slices.Sort(rcpts)
	for _, r := range rcpts {
		h.Write([]byte(r))
		h.Write([]byte{0})
	}
	h.Write([]byte{0})
	return &ContentHash{h: h}
}

// Write adds raw mail bytes; it never fails.
func (c *ContentHash) Write(p []byte) (int, error) { return c.h.Write(p) }

// contentIDEncoding is lower-case base32 without padding: ids stay valid
// in subjects, KV keys and file names.
var contentIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ID returns the content id of what was written: 32 characters, 160 bits
// of SHA-256.
func (c *ContentHash) ID() string {
	return contentIDEncoding.EncodeToString(c.h.Sum(nil)[:20])
}

// ContentID returns the id of the mail raw from mailFrom to rcptTo: the
// same for the same envelope (recipients in any order) and the same
// bytes, so that an MTA's resend of a mail whose 250 it never saw is
// recognised as the mail already stored, and different for any other
// mail. Two deliberately separate sends of byte-identical mail to the
// same envelope are one mail by this id (docs/architecture.md, "Exactly
// one outcome per mail").
func ContentID(mailFrom string, rcptTo []string, raw []byte) string {
	c := NewContentHash(mailFrom, rcptTo)
	c.Write(raw)
	return c.ID()
}
