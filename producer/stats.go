package producer

import "github.com/mailscope/mailscope/groupcommit"

// PublishStats counts how a Publisher stored its mail: in atomic batches
// (group commit) or one by one. Its fields are documented on
// groupcommit.Stats.
type PublishStats = groupcommit.Stats

// PublishStats returns how the producer has stored its mail so far: in
// atomic batches (group commit) or one by one.
func (p *Producer) PublishStats() PublishStats { return p.pub.Stats() }
