package node

import (
	"fmt"

	"github.com/zkvstore/zkv/internal/natsnode"
)

// startNATSNode starts the embedded NATS server in embedded mode
// (Config.NATSListen) and points the node's connection at it; otherwise
// it does nothing. Run calls it before connectNATS and stopNATSNode after
// the connection is closed, on every exit path.
func (s *Server) startNATSNode() error {
	if s.cfg.NATSListen == "" {
		return nil
	}
	ns, err := natsnode.Start(s.cfg.natsNodeConfig())
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	s.natsNode = ns
	// The node connects in-process; the URL names the listener in logs
	// and errors.
	s.cfg.NATSURL = ns.ClientURL()
	return nil
}

// stopNATSNode shuts the embedded NATS server down, if there is one. The
// other nodes' servers drop their routes to it; its clients reconnect to
// the cluster URLs it advertised.
func (s *Server) stopNATSNode() {
	if s.natsNode != nil {
		s.natsNode.Shutdown()
	}
}
