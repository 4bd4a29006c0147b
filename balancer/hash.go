package balancer

import (
	"crypto/rand"
	"encoding/hex"
	"math"
)

// SourceHash returns the "sh" balancer: consistent hashing of a key onto the
// nodes (weighted rendezvous hashing), so that one key keeps landing on the
// same node while that node is usable, and adding or removing one of N nodes
// moves only about 1/N of the keys. The key is PickInfo.Key, or key when
// that is empty; an empty key is replaced by a random one chosen now, so one
// process sticks to one node while it lives.
func SourceHash(key string) Balancer {
	if key == "" {
		b := make([]byte, 8)
		rand.Read(b)
		key = hex.EncodeToString(b)
	}
	return sourceHash{key: key}
}

type sourceHash struct{ key string }

func (b sourceHash) Build(nodes []Node) Picker {
	p := &shPicker{key: b.key, nodes: append([]Node(nil), nodes...)}
	p.seeds = make([]uint64, len(nodes))
	p.weights = make([]float64, len(nodes))
	for i, n := range nodes {
		p.seeds[i] = fnv(fnvOffset, n.Addr)
		p.weights[i] = float64(weight(n))
	}
	return p
}

var _ Picker = (*shPicker)(nil)

type shPicker struct {
	key     string
	nodes   []Node
	seeds   []uint64 // a hash of each node's address
	weights []float64
}

func (p *shPicker) Pick(info PickInfo) (Result, error) {
	key := info.Key
	if key == "" {
		key = p.key
	}
	k := fnv(fnvOffset, key)
	best, bestScore := -1, 0.0
	for i := range p.nodes {
		if info.Skip != nil && info.Skip(i) {
			continue
		}
		if s := score(k, p.seeds[i], p.weights[i]); best < 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return Result{}, ErrNoNode
	}
	return Result{Node: p.nodes[best], Index: best}, nil
}

// score is node's weighted rendezvous score for key: -w / ln(u), with u
// uniform in (0, 1) from the pair's hash. The highest score wins; a node
// of weight w wins w times as many keys as one of weight 1.
func score(key, node uint64, w float64) float64 {
	h := mix(key ^ mix(node))
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -w / math.Log(u)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix is splitmix64's finalizer: every input bit moves every output bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
