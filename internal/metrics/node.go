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

var (
	nodeContainersDesc = prometheus.NewDesc("msm_node_containers",
		"Containers whose agents the node of a server runs and watches.", []string{"server"}, nil)
	nodeStartsDesc = prometheus.NewDesc("msm_node_container_starts_total",
		"Container starts the node was asked for, by result (started, failed); one found running already is neither.", []string{"server", "result"}, nil)
	nodeStopsDesc = prometheus.NewDesc("msm_node_container_stops_total",
		"Container stops the node was asked for.", []string{"server"}, nil)
	nodeExitsDesc = prometheus.NewDesc("msm_node_agent_exits_total",
		"Container agents that ended unasked, each reported to the Manager (which recovers the container).", []string{"server"}, nil)
)

// Node exports the counts of the node of server (a prometheus.Collector).
type Node struct {
	server string
	src    NodeStatser
}

// NewNode is the collector of the node of server.
func NewNode(server string, src NodeStatser) *Node { return &Node{server: server, src: src} }

// Describe sends the descriptors of every metric Collect sends.
func (n *Node) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodeContainersDesc, nodeStartsDesc, nodeStopsDesc, nodeExitsDesc} {
		ch <- d
	}
}

// Collect sends the node's counts.
func (n *Node) Collect(ch chan<- prometheus.Metric) {
	st := n.src.Stats()
	ch <- prometheus.MustNewConstMetric(nodeContainersDesc, prometheus.GaugeValue, float64(st.Containers), n.server)
	ch <- prometheus.MustNewConstMetric(nodeStartsDesc, prometheus.CounterValue, float64(st.Started), n.server, "started")
	ch <- prometheus.MustNewConstMetric(nodeStartsDesc, prometheus.CounterValue, float64(st.StartFailed), n.server, "failed")
	ch <- prometheus.MustNewConstMetric(nodeStopsDesc, prometheus.CounterValue, float64(st.Stopped), n.server)
	ch <- prometheus.MustNewConstMetric(nodeExitsDesc, prometheus.CounterValue, float64(st.AgentExits), n.server)
}
