package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/msm-project/msm/node"
)

// NodeStatser reads what a node did since it started and runs now
// (node.Node.Stats).
type NodeStatser interface {
	Stats() node.Stats
}

// Node exports the counts of the node of one server (a
// prometheus.Collector); several, one per server, share a registry (msm
// dev's): the server is a constant label of each one's metrics.
type Node struct {
	src                              NodeStatser
	containers, starts, stops, exits *prometheus.Desc
}

// NewNode is the collector of the node of server.
func NewNode(server string, src NodeStatser) *Node {
	l := prometheus.Labels{"server": server}
	return &Node{src: src,
		containers: prometheus.NewDesc("msm_node_containers",
			"Containers whose agents the node of a server runs and watches.", nil, l),
		starts: prometheus.NewDesc("msm_node_container_starts_total",
			"Container starts the node was asked for, by result (started, failed); one found running already is neither.", []string{"result"}, l),
		stops: prometheus.NewDesc("msm_node_container_stops_total",
			"Container stops the node was asked for.", nil, l),
		exits: prometheus.NewDesc("msm_node_agent_exits_total",
			"Container agents that ended unasked, each reported to the Manager (which recovers the container).", nil, l),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (n *Node) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{n.containers, n.starts, n.stops, n.exits} {
		ch <- d
	}
}

// Collect sends the node's counts.
func (n *Node) Collect(ch chan<- prometheus.Metric) {
	st := n.src.Stats()
	if st.Containers >= 0 { // a docker node's engine that did not answer: unknown
		ch <- prometheus.MustNewConstMetric(n.containers, prometheus.GaugeValue, float64(st.Containers))
	}
	ch <- prometheus.MustNewConstMetric(n.starts, prometheus.CounterValue, float64(st.Started), "started")
	ch <- prometheus.MustNewConstMetric(n.starts, prometheus.CounterValue, float64(st.StartFailed), "failed")
	ch <- prometheus.MustNewConstMetric(n.stops, prometheus.CounterValue, float64(st.Stopped))
	ch <- prometheus.MustNewConstMetric(n.exits, prometheus.CounterValue, float64(st.AgentExits))
}
