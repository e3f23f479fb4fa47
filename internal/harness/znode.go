package harness

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// DeleteZnode deletes the znode at path from the ZooKeeper at connect
// (comma-separated host:port), whoever owns it, with digest credentials
// auth ("" for none), as an operator or another server would. A missing
// znode is an error. It closes its session before it returns.
func DeleteZnode(ctx context.Context, connect, path, auth string) error {
	conn, _, err := zk.Connect(strings.Split(connect, ","), 5*time.Second,
		zk.WithLogger(log.New(nopWriter{}, "", 0)), zk.WithLogInfo(false))
	if err != nil {
		return fmt.Errorf("delete %s: connect to ZooKeeper %s: %w", path, connect, err)
	}
	defer conn.Close()
	if auth != "" {
		if err := conn.AddAuth("digest", []byte(auth)); err != nil {
			return fmt.Errorf("delete %s: ZooKeeper auth: %w", path, err)
		}
	}
	var gone error
	err = WaitFor(ctx, 50*time.Millisecond, func() error {
		err := conn.Delete(path, -1)
		if errors.Is(err, zk.ErrNoNode) {
			gone = err // retrying cannot help
			return nil
		}
		return err
	})
	if err == nil {
		err = gone
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", path, err)
	}
	return nil
}
