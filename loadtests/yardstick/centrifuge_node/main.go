// Command centrifuge_node is the yardstick of issue 11: one node of Go's centrifuge library,
// doing bare fan-out over its Redis broker, for loadtests/yardstick to drive with the same
// load client as StudyBuddy. Two processes on one Redis are two nodes.
//
// Connecting needs no token: the connect request's data may name a user
// ({"user": "u1"}), otherwise the connection is anonymous. Any connection may subscribe to
// and publish into any channel. A client publication is stamped with the node's wall clock
// when it is accepted ("created_at", ISO 8601 in UTC to the millisecond, as StudyBuddy
// stamps its messages) and then published to the channel, so publish-to-delivery is
// measured from the same point for both servers.
//
// Built by loadtests/yardstick/build.sh against Debian's packaged centrifuge (a pinned
// version); only 127.0.0.1 is served.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge"
)

type options struct {
	port     int
	redis    string
	prefix   string
	history  int
	presence bool
}

func parseOptions() options {
	var o options
	flag.IntVar(&o.port, "port", 8000, "port to serve WebSocket (/connection/websocket) and /health on, on 127.0.0.1")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (host:port or redis:// URL)")
	flag.StringVar(&o.prefix, "prefix", "centrifuge", "prefix of every Redis key and channel of this cluster")
	flag.IntVar(&o.history, "history", 0, "publications kept per channel (0: bare fan-out, no history)")
	flag.BoolVar(&o.presence, "presence", false, "subscribers take part in channel presence")
	flag.Parse()
	return o
}

// stamp returns the publication with "created_at" put first, or nil when data is not a JSON object.
func stamp(data []byte, now time.Time) []byte {
	if len(data) < 2 || data[0] != '{' {
		return nil
	}
	created := now.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	out := make([]byte, 0, len(data)+len(created)+18)
	out = append(out, `{"created_at":"`...)
	out = append(out, created...)
	out = append(out, '"')
	body := data[1:]
	for len(body) > 0 && (body[0] == ' ' || body[0] == '\n' || body[0] == '\t' || body[0] == '\r') {
		body = body[1:]
	}
	if len(body) > 0 && body[0] != '}' {
		out = append(out, ',')
	}
	return append(out, body...)
}

func onConnecting(_ context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
	var claimed struct {
		User string `json:"user"`
	}
	if len(e.Data) > 0 {
		_ = json.Unmarshal(e.Data, &claimed) // not authentication: any name, or none, is taken
	}
	return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: claimed.User}}, nil
}

func onConnect(node *centrifuge.Node, o options) func(*centrifuge.Client) {
	return func(client *centrifuge.Client) {
		client.OnSubscribe(func(_ centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			cb(centrifuge.SubscribeReply{Options: centrifuge.SubscribeOptions{Presence: o.presence}}, nil)
		})
		client.OnPublish(func(e centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
			data := stamp(e.Data, time.Now())
			if data == nil {
				cb(centrifuge.PublishReply{}, centrifuge.ErrorBadRequest)
				return
			}
			var opts []centrifuge.PublishOption
			if o.history > 0 {
				opts = append(opts, centrifuge.WithHistory(o.history, 24*time.Hour))
			}
			result, err := node.Publish(e.Channel, data, opts...)
			if err != nil {
				cb(centrifuge.PublishReply{}, err)
				return
			}
			cb(centrifuge.PublishReply{Result: &result}, nil)
		})
	}
}

func setUpRedis(node *centrifuge.Node, o options) error {
	shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: o.redis})
	if err != nil {
		return err
	}
	shards := []*centrifuge.RedisShard{shard}
	broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{
		Prefix: o.prefix, UseStreams: true, Shards: shards,
	})
	if err != nil {
		return err
	}
	node.SetBroker(broker)
	presence, err := centrifuge.NewRedisPresenceManager(node, centrifuge.RedisPresenceManagerConfig{
		Prefix: o.prefix, Shards: shards,
	})
	if err != nil {
		return err
	}
	node.SetPresenceManager(presence)
	return nil
}

func main() {
	o := parseOptions()
	cfg := centrifuge.DefaultConfig
	cfg.LogLevel = centrifuge.LogLevelError
	cfg.LogHandler = func(e centrifuge.LogEntry) { log.Printf("centrifuge: %s: %v", e.Message, e.Fields) }
	node, err := centrifuge.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	node.OnConnecting(onConnecting)
	node.OnConnect(onConnect(node, o))
	if err := setUpRedis(node, o); err != nil {
		log.Fatal(err)
	}
	if err := node.Run(); err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{}))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	server := &http.Server{Addr: "127.0.0.1:" + strconv.Itoa(o.port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = server.Shutdown(ctx)
	_ = node.Shutdown(ctx)
}
