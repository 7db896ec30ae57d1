package producer

// PublishStats returns how the producer has stored its mail so far: in
// atomic batches (group commit) or one by one.
func (p *Producer) PublishStats() PublishStats { return p.pub.Stats() }
