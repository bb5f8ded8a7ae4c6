// Command ferretdb-wrapper runs FerretDB (MongoDB wire protocol) with its SQLite backend for the
// local stack. It embeds github.com/FerretDB/FerretDB/ferretdb instead of building cmd/ferretdb,
// because cmd/ferretdb panics without a generated build/version/version.txt (upstream #2982);
// the embedded path also never starts the telemetry reporter.
//
//	ferretdb-wrapper -listen 127.0.0.1:17017 -sqlite-dir /path/to/data
//	ferretdb-wrapper -ping 127.0.0.1:17017   # readiness check: exit 0 when `ping` answers ok
//
// Flags default to the environment variables FERRETDB_LISTEN, FERRETDB_SQLITE_DIR,
// FERRETDB_LOG_LEVEL and FERRETDB_SQLITE_SYNCHRONOUS (-synchronous: SQLite's full, an fsync per
// commit, or normal, fsyncs at WAL checkpoints only). Logs go to stderr. SIGTERM or SIGINT stops
// it cleanly.
//
// It also works around a FerretDB 1.24 bug that makes every `{_id: x}` lookup scan its table:
// the SQLite backend looks a document up with `WHERE _ferretdb_sjson->'$._id' = ?`
// (internal/backends/sqlite/metadata: IDColumn), but the unique index it creates for _id is on
// `_ferretdb_sjson->"_id"`, and SQLite uses an index on an expression only for the same
// expression, written the same way. So, before serving and then every -index-every, the
// wrapper adds to each collection's table an index on the expression FerretDB queries by
// (idIndexes). FerretDB does not know of it (listIndexes does not show it) and drops it with
// the table. docs/local.md has the measurements.
package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/bson"
	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses, for idIndexes
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	listen := flag.String("listen", envOr("FERRETDB_LISTEN", "127.0.0.1:27017"), "TCP address to listen on")
	dir := flag.String("sqlite-dir", envOr("FERRETDB_SQLITE_DIR", ""), "directory of the SQLite databases (created if missing)")
	level := flag.String("log-level", envOr("FERRETDB_LOG_LEVEL", "info"), "debug, info, warn or error")
	ping := flag.String("ping", "", "instead of serving, send `ping` to this address and exit 0 on success")
	timeout := flag.Duration("timeout", 2*time.Second, "deadline of -ping")
	every := flag.Duration("index-every", time.Second, "how often new collections get their _id lookup index (0: never)")
	sync := flag.String("synchronous", envOr("FERRETDB_SQLITE_SYNCHRONOUS", "full"), "SQLite's synchronous setting: full (an fsync per commit) or normal (WAL: fsync at checkpoints only)")
	flag.Parse()

	if *ping != "" {
		if err := doPing(*ping, *timeout); err != nil {
			fmt.Fprintf(os.Stderr, "ferretdb-wrapper: ping %s: %v\n", *ping, err)
			os.Exit(1)
		}
		return
	}

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fatal("bad -log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	if *sync != "full" && *sync != "normal" {
		fatal("bad -synchronous %q: full or normal", *sync)
	}
	if err := serve(logger, *listen, *dir, *every, *sync); err != nil {
		fatal("%v", err)
	}
}

func serve(logger *slog.Logger, listen, dir string, every time.Duration, sync string) error {
	if dir == "" {
		return errors.New("-sqlite-dir (or FERRETDB_SQLITE_DIR) is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// FerretDB wants an existing directory and a file: URI ending with a slash.
	if err = os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	// FerretDB adds its own pragmas (WAL, busy timeout) and passes others through to every
	// database it opens.
	q := url.Values{"_pragma": {"synchronous(" + sync + ")"}}
	sqliteURL := (&url.URL{Scheme: "file", Path: abs + "/", RawQuery: q.Encode()}).String()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	if every > 0 {
		idIndexes(ctx, logger, abs) // the databases already there, before the first query
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					idIndexes(ctx, logger, abs)
				}
			}
		}()
	}

	logger.Info("ferretdb-wrapper starting", "listen", listen, "sqlite", sqliteURL)
	err = f.Run(ctx)
	logger.Info("ferretdb-wrapper stopped")
	return err
}

// idIndexSuffix names the index idIndexes adds to a collection's table.
const idIndexSuffix = "__id_lookup"

// idIndexes adds the _id lookup index (see the package comment) to every collection table of
// every database in dir that lacks it. A database dropped meanwhile is skipped; other errors
// are logged and tried again next time.
func idIndexes(ctx context.Context, logger *slog.Logger, dir string) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		logger.Warn("id index: cannot list databases", "dir", dir, "error", err)
		return
	}
	for _, f := range files {
		if err = idIndexFile(ctx, logger, f); err != nil && ctx.Err() == nil {
			if _, serr := os.Stat(f); errors.Is(serr, os.ErrNotExist) {
				continue // dropped meanwhile
			}
			logger.Warn("id index: not created", "database", f, "error", err)
		}
	}
}

func idIndexFile(ctx context.Context, logger *slog.Logger, path string) error {
	// mode=rw: never create a database FerretDB has just dropped. FerretDB keeps its files in
	// WAL mode with a busy timeout; this connection waits for its locks the same way.
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=rw&_pragma=busy_timeout(10000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()

	// Collection tables: every table but FerretDB's own catalogue (_ferretdb_collections).
	rows, err := db.QueryContext(ctx, `SELECT t.name FROM sqlite_master t
		WHERE t.type = 'table' AND t.name NOT LIKE '\_ferretdb\_%' ESCAPE '\'
		AND NOT EXISTS (SELECT 1 FROM sqlite_master i
			WHERE i.type = 'index' AND i.tbl_name = t.name AND i.name = t.name || ?)`,
		idIndexSuffix)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err = rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, name)
	}
	if err = rows.Close(); err != nil {
		return err
	}
	if err = rows.Err(); err != nil {
		return err
	}

	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`,
			t+idIndexSuffix, t)
		if _, err = db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		logger.Info("id index: created", "database", filepath.Base(path), "table", t)
	}
	return nil
}

// doPing does a real round trip over the wire protocol: one OP_MSG `ping` on one connection,
// reply checked for ok: 1. Hand-made rather than mongo.Connect, so a health poll costs one
// connection and no endSessions error in the server log.
func doPing(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err = conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}

	doc, err := bson.Marshal(bson.D{{Key: "ping", Value: int32(1)}, {Key: "$db", Value: "admin"}})
	if err != nil {
		return err
	}
	// header (length, requestID, responseTo, opCode 2013 = OP_MSG), flagBits, section kind 0, body
	msg := make([]byte, 21, 21+len(doc))
	binary.LittleEndian.PutUint32(msg[0:], uint32(21+len(doc)))
	binary.LittleEndian.PutUint32(msg[4:], 1)
	binary.LittleEndian.PutUint32(msg[12:], 2013)
	msg = append(msg, doc...)
	if _, err = conn.Write(msg); err != nil {
		return err
	}

	var hdr [16]byte
	if _, err = io.ReadFull(conn, hdr[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(hdr[0:])
	if op := binary.LittleEndian.Uint32(hdr[12:]); op != 2013 || n < 21 || n > 16<<20 {
		return fmt.Errorf("unexpected reply (opCode %d, length %d)", op, n)
	}
	body := make([]byte, n-16)
	if _, err = io.ReadFull(conn, body); err != nil {
		return err
	}
	if body[4] != 0 {
		return fmt.Errorf("unexpected reply section kind %d", body[4])
	}
	reply := bson.Raw(body[5:])
	if err = reply.Validate(); err != nil {
		return err
	}
	if !isOne(reply.Lookup("ok")) {
		return fmt.Errorf("ping failed: %s", reply.String())
	}
	return nil
}

// isOne: servers send ok as a double, some as an integer.
func isOne(v bson.RawValue) bool {
	if d, ok := v.DoubleOK(); ok {
		return d == 1
	}
	if i, ok := v.AsInt64OK(); ok {
		return i == 1
	}
	return false
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ferretdb-wrapper: "+format+"\n", args...)
	os.Exit(1)
}
