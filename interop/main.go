// Command interop drives FakeTeleport with Teleport's own Go client library (the `api` module of the
// Teleport 10.3 line) through everything teleport-jira relies on, and prints one line per check:
//
//	PASS <name>
//	FAIL <name>: <why>
//
// (and INFO lines that explain how a check went), then `DONE <passed> passed, <failed> failed`. It is test-only: the Rust test
// crates/testkit/tests/interop.rs starts FakeTeleport, writes the identity files into -dir, builds this
// program and runs it. The exit status is 0 when every check passed, 1 otherwise.
//
// Two checks need the server to act: the program prints `ASK drop-watchers` (end every open watch
// stream) or `ASK restart-auth` (close every connection and listener, bind the same ports again) and
// waits for the harness to answer `ok` on stdin.
//
// Identity files expected in -dir (users as the Rust test creates them):
//
//	access-plugin.<flavour>.identity  the plugin role, one file per private-key flavour
//	alice.identity                    requester of "editor"; her requests need 2 approvals, 1 denial
//	dave.identity                     requester of "editor"; his requests need 1 approval, 1 denial
//	bob.identity, carol.identity      reviewers of "editor"
//	admin.identity                    the builtin Admin role (deletes requests)
//	foreign-ca.identity               access-plugin's identity signed by another cluster's User CA,
//	                                  with this cluster's Host CA (so only the client cert is wrong)
//	host-ca.pem                       this cluster's Host CA (for the connection without a client cert)
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/identityfile"
	"github.com/gravitational/teleport/api/types"
	apiutils "github.com/gravitational/teleport/api/utils"
	"github.com/gravitational/teleport/api/utils/keypaths"
	"github.com/gravitational/teleport/api/utils/sshutils"
	"github.com/gravitational/trace"
	"github.com/gravitational/trace/trail"
	"golang.org/x/crypto/ssh"
)

const (
	pluginUser = "access-plugin"
	plugin     = "jira"
	role       = "editor"
	delegator  = "jira:approver@example.com"
	// How long one step (a dial, an RPC, an awaited event) may take.
	step = 5 * time.Second
)

// Key flavours the testkit writes, as named in the identity file names. The 10.3 reader picks the
// parser by the PEM label, so the mislabeled flavour is expected to be refused (see refusedFlavours).
var loadableFlavours = []string{"rsa-pkcs1", "pkcs8-rsa", "pkcs8-ecdsa", "sec1-ecdsa", "pkcs8-ed25519"}
var refusedFlavours = []string{"rsa-pkcs8-under-rsa-label"}

type env struct {
	authAddr, proxyAddr, cluster, serverVersion, proxyPublicAddr, dir string
}

type suite struct {
	env
	ctx                             context.Context
	passed, failed                  int
	plugin, alice, dave, bob, carol *client.Client
	admin                           *client.Client
}

func main() {
	var e env
	flag.StringVar(&e.authAddr, "auth", "", "Auth Service address (host:port)")
	flag.StringVar(&e.proxyAddr, "proxy", "", "Proxy address with TLS routing (host:port)")
	flag.StringVar(&e.cluster, "cluster", "", "cluster name")
	flag.StringVar(&e.serverVersion, "server-version", "", "server version Ping must report")
	flag.StringVar(&e.proxyPublicAddr, "proxy-public-addr", "", "ProxyPublicAddr Ping must report")
	flag.StringVar(&e.dir, "dir", "", "directory holding the identity files")
	flag.Parse()
	if e.authAddr == "" || e.proxyAddr == "" || e.cluster == "" || e.dir == "" {
		fmt.Fprintln(os.Stderr, "usage: interop -auth ADDR -proxy ADDR -cluster NAME -server-version V -dir DIR")
		os.Exit(2)
	}
	s := &suite{env: e, ctx: context.Background()}
	s.run()
	fmt.Printf("DONE %d passed, %d failed\n", s.passed, s.failed)
	if s.failed > 0 {
		os.Exit(1)
	}
}

func (s *suite) run() {
	for _, flavour := range loadableFlavours {
		s.check("identity/"+flavour, func() error { return s.identityConnects(flavour) })
	}
	for _, flavour := range refusedFlavours {
		s.check("identity/"+flavour+"-refused-by-10.3", func() error { return s.identityRefused(flavour) })
	}
	var err error
	connect := func(name string, c **client.Client) {
		if err != nil {
			return
		}
		*c, err = s.connect(s.identity(name), s.authAddr, "")
		if err != nil {
			err = fmt.Errorf("connecting as %s: %v", name, err)
		}
	}
	connect(pluginUser+".rsa-pkcs1", &s.plugin)
	connect("alice", &s.alice)
	connect("dave", &s.dave)
	connect("bob", &s.bob)
	connect("carol", &s.carol)
	connect("admin", &s.admin)
	if err != nil {
		s.fail("clients", err)
		return
	}
	s.check("ping", s.ping)
	s.check("proxy/tls-routing", s.proxyRouting)
	s.watch()
	s.check("get/by-id", s.getByID)
	s.check("get/unknown-id-is-empty", s.getUnknownID)
	s.check("get/filter-by-user-and-state", s.getFiltered)
	s.setState()
	s.reviews()
	s.pluginData()
	s.check("errors/not-found", s.errorsNotFound)
	s.check("errors/access-denied", s.errorsAccessDenied)
	s.check("errors/bad-parameter", s.errorsBadParameter)
	s.check("errors/not-implemented", s.errorsNotImplemented)
	s.check("tls/no-client-cert", s.noClientCert)
	s.check("tls/foreign-ca", s.foreignCA)
	// These two ask the harness to act on the server, so they come last.
	s.check("watch/server-close-is-connection-problem", s.watchClosedByServer)
	s.check("reconnect/after-auth-restart", s.reconnectAfterRestart)
}

// === Reporting ===

func (s *suite) check(name string, f func() error) {
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return f()
	}()
	if err != nil {
		s.fail(name, err)
		return
	}
	s.passed++
	fmt.Printf("PASS %s\n", name)
}

func (s *suite) fail(name string, err error) {
	s.failed++
	fmt.Printf("FAIL %s: %s\n", name, oneLine(err.Error()))
}

// info prints a line that explains how a check went; it is neither a pass nor a failure.
func info(format string, args ...interface{}) {
	fmt.Printf("INFO "+format+"\n", args...)
}

func oneLine(text string) string {
	return strings.Join(strings.Fields(text), " ")
}

// === Connections ===

func (s *suite) identity(name string) string {
	return filepath.Join(s.dir, name+".identity")
}

// connect dials like the Go plugins do: client.New with an identity file and the address given
// (the client tries it as Auth, as a Proxy and as a tunnel, and keeps the first that works).
func (s *suite) connect(identityPath, addr, routeCluster string) (*client.Client, error) {
	return s.connectWith(client.LoadIdentityFile(identityPath), addr, routeCluster)
}

func (s *suite) connectWith(creds client.Credentials, addr, routeCluster string) (*client.Client, error) {
	return s.connectWithin(step, creds, addr, routeCluster)
}

// connectWithin dials with the given dial timeout (the client blocks until connected or timed out).
func (s *suite) connectWithin(dialTimeout time.Duration, creds client.Credentials, addr, routeCluster string) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*dialTimeout)
	defer cancel()
	return client.New(ctx, client.Config{
		Addrs:                      []string{addr},
		Credentials:                []client.Credentials{creds},
		DialInBackground:           false,
		DialTimeout:                dialTimeout,
		ALPNSNIAuthDialClusterName: routeCluster,
	})
}

func (s *suite) rpc() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, step)
}

// === Identity files and Ping ===

func (s *suite) identityConnects(flavour string) error {
	path := s.identity(pluginUser + "." + flavour)
	if err := sideFileForNonSSHPrefixedCert(path); err != nil {
		return err
	}
	creds := client.LoadIdentityFile(path)
	if _, err := creds.TLSConfig(); err != nil {
		return fmt.Errorf("TLSConfig: %v", err)
	}
	if _, err := creds.SSHClientConfig(); err != nil {
		return fmt.Errorf("SSHClientConfig: %v", err)
	}
	if err := sshCertValid(path); err != nil {
		return err
	}
	clt, err := s.connect(path, s.authAddr, "")
	if err != nil {
		return fmt.Errorf("client.New: %v", err)
	}
	defer clt.Close()
	ctx, cancel := s.rpc()
	defer cancel()
	pong, err := clt.Ping(ctx)
	if err != nil {
		return fmt.Errorf("Ping: %v", err)
	}
	if pong.ClusterName != s.cluster {
		return fmt.Errorf("Ping cluster name %q, want %q", pong.ClusterName, s.cluster)
	}
	return nil
}

// sshCertValid checks the identity's SSH certificate as an SSH server would: a user certificate for the
// plugin's login, inside its validity window, with a signature that verifies against its CA key.
func sshCertValid(path string) error {
	id, err := identityfile.ReadFile(path)
	if err != nil {
		return err
	}
	cert, err := sshutils.ParseCertificate(id.Certs.SSH)
	if err != nil {
		return err
	}
	if cert.CertType != ssh.UserCert {
		return fmt.Errorf("SSH certificate type %d, want a user certificate", cert.CertType)
	}
	checker := ssh.CertChecker{IsUserAuthority: func(ssh.PublicKey) bool { return true }}
	if err := checker.CheckCert(pluginUser, cert); err != nil {
		return fmt.Errorf("SSH certificate: %v", err)
	}
	if _, err := sshutils.ParseKnownHosts(id.CACerts.SSH); err != nil {
		return fmt.Errorf("SSH CA lines: %v", err)
	}
	return nil
}

// sshCertType is how newer readers (v17's sshutils.IsSSHCertType) recognise the SSH certificate line.
var sshCertType = regexp.MustCompile(`^[a-z0-9-]+-cert-v[0-9]{2}@openssh\.com$`)

// sideFileForNonSSHPrefixedCert bridges a reader difference between 10.3 and v17. The 10.3 reader
// takes the SSH certificate from the line that starts with "ssh", which an ECDSA certificate
// (ecdsa-sha2-nistp256-cert-v01@openssh.com) does not; v17 matches the certificate type instead.
// When no line starts with "ssh", 10.3 reads the certificate from <identity>-cert.pub, so the line
// that v17 would pick is put there. Every other part of the file is still read by 10.3's reader.
func sideFileForNonSSHPrefixedCert(path string) error {
	content, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var certLine string
	for _, line := range strings.Split(string(content), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "ssh") {
			return nil
		}
		if sshCertType.MatchString(strings.SplitN(line, " ", 2)[0]) {
			certLine = line
		}
	}
	if certLine == "" {
		return errors.New("no SSH certificate line in the identity file")
	}
	if _, err := identityfile.ReadFile(path); err == nil || !strings.Contains(err.Error(), "could not find SSH cert") {
		return fmt.Errorf("the 10.3 reader was expected to miss the %s line, got %v", strings.SplitN(certLine, " ", 2)[0], err)
	}
	info("%s: the 10.3 reader skips the %s line (it takes lines starting with \"ssh\"); wrote it to %s, where 10.3 looks next",
		filepath.Base(path), strings.SplitN(certLine, " ", 2)[0], filepath.Base(keypaths.IdentitySSHCertPath(path)))
	return os.WriteFile(keypaths.IdentitySSHCertPath(path), []byte(certLine+"\n"), 0o600)
}

func (s *suite) identityRefused(flavour string) error {
	_, err := client.LoadIdentityFile(s.identity(pluginUser + "." + flavour)).TLSConfig()
	if err == nil {
		return errors.New("the 10.3 reader accepted PKCS#8 DER under an RSA PRIVATE KEY label; is the file really mislabeled?")
	}
	if !strings.Contains(err.Error(), "x509") {
		return fmt.Errorf("refused for another reason than the key's DER: %v", err)
	}
	return nil
}

func (s *suite) ping() error {
	ctx, cancel := s.rpc()
	defer cancel()
	pong, err := s.plugin.Ping(ctx)
	if err != nil {
		return err
	}
	var problems []string
	if pong.ClusterName != s.cluster {
		problems = append(problems, fmt.Sprintf("ClusterName %q, want %q", pong.ClusterName, s.cluster))
	}
	if pong.ServerVersion != s.serverVersion {
		problems = append(problems, fmt.Sprintf("ServerVersion %q, want %q", pong.ServerVersion, s.serverVersion))
	}
	if pong.ServerFeatures == nil || !pong.ServerFeatures.AdvancedAccessWorkflows {
		problems = append(problems, fmt.Sprintf("ServerFeatures.AdvancedAccessWorkflows not true (features %+v)", pong.ServerFeatures))
	}
	if host, _, err := net.SplitHostPort(pong.RemoteAddr); err != nil || host != "127.0.0.1" {
		problems = append(problems, fmt.Sprintf("RemoteAddr %q is not this client's address", pong.RemoteAddr))
	}
	if pong.ProxyPublicAddr != s.proxyPublicAddr {
		problems = append(problems, fmt.Sprintf("ProxyPublicAddr %q, want %q", pong.ProxyPublicAddr, s.proxyPublicAddr))
	}
	return joined(problems)
}

// proxyRouting dials the Proxy with the ALPN route to Auth (teleport-auth@<hex(cluster)>...).
func (s *suite) proxyRouting() error {
	clt, err := s.connect(s.identity(pluginUser+".pkcs8-ecdsa"), s.proxyAddr, s.cluster)
	if err != nil {
		return fmt.Errorf("client.New through the proxy: %v", err)
	}
	defer clt.Close()
	ctx, cancel := s.rpc()
	defer cancel()
	pong, err := clt.Ping(ctx)
	if err != nil {
		return fmt.Errorf("Ping through the proxy: %v", err)
	}
	if pong.ClusterName != s.cluster {
		return fmt.Errorf("ClusterName %q, want %q", pong.ClusterName, s.cluster)
	}
	return nil
}

// === Requests ===

// createRequest files a pending request as the client's user. The 10.3 client only knows the
// deprecated CreateAccessRequest RPC, which v17 no longer serves; CreateAccessRequestV2 takes and
// returns the same AccessRequestV3, so it is invoked by its path on the client's own connection.
func createRequest(ctx context.Context, clt *client.Client, user, reason string, reviewers ...string) (types.AccessRequest, error) {
	req, err := types.NewAccessRequest(newID(), user, role)
	if err != nil {
		return nil, err
	}
	req.SetRequestReason(reason)
	req.SetSuggestedReviewers(reviewers)
	out := new(types.AccessRequestV3)
	if err := clt.GetConnection().Invoke(ctx, "/proto.AuthService/CreateAccessRequestV2", req, out); err != nil {
		return nil, trail.FromGRPC(err)
	}
	return out, nil
}

func (s *suite) create(clt *client.Client, user, reason string, reviewers ...string) (types.AccessRequest, error) {
	ctx, cancel := s.rpc()
	defer cancel()
	req, err := createRequest(ctx, clt, user, reason, reviewers...)
	if err != nil {
		return nil, fmt.Errorf("creating a request as %s: %v", user, err)
	}
	return req, nil
}

func (s *suite) get(id string) (types.AccessRequest, error) {
	ctx, cancel := s.rpc()
	defer cancel()
	reqs, err := s.plugin.GetAccessRequests(ctx, types.AccessRequestFilter{ID: id})
	if err != nil {
		return nil, fmt.Errorf("GetAccessRequests(%s): %v", id, err)
	}
	if len(reqs) != 1 {
		return nil, fmt.Errorf("GetAccessRequests(%s) returned %d requests, want 1", id, len(reqs))
	}
	return reqs[0], nil
}

func (s *suite) review(clt *client.Client, id string, state types.RequestState, reason string) (types.AccessRequest, error) {
	ctx, cancel := s.rpc()
	defer cancel()
	return clt.SubmitAccessReview(ctx, types.AccessReviewSubmission{
		RequestID: id,
		Review: types.AccessReview{
			ProposedState: state,
			Reason:        reason,
			Created:       time.Now().UTC(),
		},
	})
}

func (s *suite) setStateAs(clt *client.Client, id string, state types.RequestState, reason string) error {
	ctx, cancel := s.rpc()
	defer cancel()
	ctx = apiutils.WithDelegator(ctx, delegator)
	return clt.SetAccessRequestState(ctx, types.AccessRequestUpdate{RequestID: id, State: state, Reason: reason})
}

// === Watch ===

func (s *suite) watch() {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	w, err := s.plugin.NewWatcher(ctx, types.Watch{Kinds: []types.WatchKind{{Kind: types.KindAccessRequest}}})
	if err != nil {
		s.fail("watch/init", fmt.Errorf("NewWatcher: %v", err))
		return
	}
	defer w.Close()
	ok := true
	s.check("watch/init", func() error {
		ev, err := nextEvent(w, "")
		if err != nil {
			ok = false
			return err
		}
		if ev.Type != types.OpInit {
			ok = false
			return fmt.Errorf("first event is %v, want %v", ev.Type, types.OpInit)
		}
		return nil
	})
	if !ok {
		return
	}
	var id string
	s.check("watch/put-on-create", func() error {
		req, err := s.create(s.alice, "alice", "watch me")
		if err != nil {
			return err
		}
		id = req.GetName()
		return expectPut(w, id, func(r types.AccessRequest) error {
			return all(
				eq("state", r.GetState(), types.RequestState_PENDING),
				eq("user", r.GetUser(), "alice"),
				eq("request reason", r.GetRequestReason(), "watch me"),
				eq("roles", r.GetRoles(), []string{role}),
			)
		})
	})
	if id == "" {
		return
	}
	s.check("watch/put-on-review", func() error {
		if _, err := s.review(s.bob, id, types.RequestState_APPROVED, "looks fine"); err != nil {
			return fmt.Errorf("SubmitAccessReview: %v", err)
		}
		return expectPut(w, id, func(r types.AccessRequest) error {
			reviews := r.GetReviews()
			if len(reviews) != 1 {
				return fmt.Errorf("%d reviews, want 1", len(reviews))
			}
			return all(
				eq("state (one of two approvals)", r.GetState(), types.RequestState_PENDING),
				eq("review author", reviews[0].Author, "bob"),
				eq("review state", reviews[0].ProposedState, types.RequestState_APPROVED),
				eq("review reason", reviews[0].Reason, "looks fine"),
			)
		})
	})
	s.check("watch/put-on-resolve", func() error {
		if err := s.setStateAs(s.plugin, id, types.RequestState_APPROVED, "approved in Jira"); err != nil {
			return fmt.Errorf("SetAccessRequestState: %v", err)
		}
		return expectPut(w, id, func(r types.AccessRequest) error {
			return all(
				eq("state", r.GetState(), types.RequestState_APPROVED),
				eq("resolve reason", r.GetResolveReason(), "approved in Jira"),
			)
		})
	})
	s.check("watch/delete-on-delete", func() error {
		ctx, cancel := s.rpc()
		defer cancel()
		if err := s.admin.DeleteAccessRequest(ctx, id); err != nil {
			return fmt.Errorf("DeleteAccessRequest: %v", err)
		}
		ev, err := nextEvent(w, id)
		if err != nil {
			return err
		}
		if ev.Type != types.OpDelete {
			return fmt.Errorf("event %v, want %v", ev.Type, types.OpDelete)
		}
		return all(
			eq("kind", ev.Resource.GetKind(), types.KindAccessRequest),
			eq("name", ev.Resource.GetName(), id),
		)
	})
}

// nextEvent waits for the next event about resource `name` ("" = any event).
func nextEvent(w types.Watcher, name string) (types.Event, error) {
	timeout := time.After(step)
	for {
		select {
		case ev := <-w.Events():
			if name == "" || (ev.Resource != nil && ev.Resource.GetName() == name) {
				return ev, nil
			}
		case <-w.Done():
			return types.Event{}, fmt.Errorf("watcher closed: %v", w.Error())
		case <-timeout:
			return types.Event{}, fmt.Errorf("no event for %q within %v", name, step)
		}
	}
}

func expectPut(w types.Watcher, id string, verify func(types.AccessRequest) error) error {
	ev, err := nextEvent(w, id)
	if err != nil {
		return err
	}
	if ev.Type != types.OpPut {
		return fmt.Errorf("event %v, want %v", ev.Type, types.OpPut)
	}
	req, ok := ev.Resource.(types.AccessRequest)
	if !ok {
		return fmt.Errorf("PUT carries %T, want an access request", ev.Resource)
	}
	return verify(req)
}

// === GetAccessRequests ===

func (s *suite) getByID() error {
	before := time.Now().Add(-time.Minute)
	created, err := s.create(s.dave, "dave", "need to deploy", "bob", "carol")
	if err != nil {
		return err
	}
	r, err := s.get(created.GetName())
	if err != nil {
		return err
	}
	problems := all(
		eq("name", r.GetName(), created.GetName()),
		eq("kind", r.GetKind(), types.KindAccessRequest),
		eq("version", r.GetVersion(), types.V3),
		eq("user", r.GetUser(), "dave"),
		eq("roles", r.GetRoles(), []string{role}),
		eq("state", r.GetState(), types.RequestState_PENDING),
		eq("request reason", r.GetRequestReason(), "need to deploy"),
		eq("resolve reason", r.GetResolveReason(), ""),
		eq("suggested reviewers", r.GetSuggestedReviewers(), []string{"bob", "carol"}),
		eq("reviews", len(r.GetReviews()), 0),
	)
	var more []string
	if problems != nil {
		more = append(more, problems.Error())
	}
	if c := r.GetCreationTime(); c.Before(before) || c.After(time.Now().Add(time.Minute)) {
		more = append(more, fmt.Sprintf("creation time %v is not now", c))
	}
	if exp := r.GetAccessExpiry(); !exp.After(r.GetCreationTime()) {
		more = append(more, fmt.Sprintf("access expiry %v is not after creation %v", exp, r.GetCreationTime()))
	}
	// dave's requests need one approval or one denial.
	if err := eq("thresholds", r.GetThresholds(), []types.AccessReviewThreshold{{Name: "default", Approve: 1, Deny: 1}}); err != nil {
		more = append(more, err.Error())
	}
	if m := r.GetRoleThresholdMapping(); len(m[role].Sets) == 0 {
		more = append(more, fmt.Sprintf("no threshold sets for %q: %v", role, m))
	}
	if r.Expiry().IsZero() {
		more = append(more, "metadata expiry unset")
	}
	return joined(more)
}

func (s *suite) getUnknownID() error {
	ctx, cancel := s.rpc()
	defer cancel()
	reqs, err := s.plugin.GetAccessRequests(ctx, types.AccessRequestFilter{ID: newID()})
	if err != nil {
		return err
	}
	if len(reqs) != 0 {
		return fmt.Errorf("%d requests for an unknown id", len(reqs))
	}
	return nil
}

func (s *suite) getFiltered() error {
	pending, err := s.create(s.dave, "dave", "filter me")
	if err != nil {
		return err
	}
	other, err := s.create(s.alice, "alice", "not dave's")
	if err != nil {
		return err
	}
	ctx, cancel := s.rpc()
	defer cancel()
	byUser, err := s.plugin.GetAccessRequests(ctx, types.AccessRequestFilter{User: "dave"})
	if err != nil {
		return fmt.Errorf("GetAccessRequests(user=dave): %v", err)
	}
	var problems []string
	found := false
	for _, r := range byUser {
		if r.GetUser() != "dave" {
			problems = append(problems, fmt.Sprintf("user filter returned %s's request %s", r.GetUser(), r.GetName()))
		}
		found = found || r.GetName() == pending.GetName()
	}
	if !found {
		problems = append(problems, "user filter missed dave's request")
	}
	if err := s.setStateAs(s.plugin, other.GetName(), types.RequestState_DENIED, "filtered out"); err != nil {
		return fmt.Errorf("SetAccessRequestState: %v", err)
	}
	byState, err := s.plugin.GetAccessRequests(ctx, types.AccessRequestFilter{State: types.RequestState_PENDING})
	if err != nil {
		return fmt.Errorf("GetAccessRequests(state=PENDING): %v", err)
	}
	found = false
	for _, r := range byState {
		if r.GetState() != types.RequestState_PENDING {
			problems = append(problems, fmt.Sprintf("state filter returned %s request %s", r.GetState(), r.GetName()))
		}
		found = found || r.GetName() == pending.GetName()
	}
	if !found {
		problems = append(problems, "state filter missed a pending request")
	}
	return joined(problems)
}

// === SetAccessRequestState ===

func (s *suite) setState() {
	var id string
	s.check("set-state/deny-with-delegator-and-reason", func() error {
		req, err := s.create(s.dave, "dave", "set me")
		if err != nil {
			return err
		}
		id = req.GetName()
		ctx, cancel := s.rpc()
		defer cancel()
		err = s.plugin.SetAccessRequestState(apiutils.WithDelegator(ctx, delegator), types.AccessRequestUpdate{
			RequestID:   id,
			State:       types.RequestState_DENIED,
			Reason:      "denied in Jira",
			Annotations: map[string][]string{"jira_issue": {"ACC-7"}, "reviewers": {"x@example.com", "y@example.com"}},
		})
		if err != nil {
			return fmt.Errorf("SetAccessRequestState: %v", err)
		}
		r, err := s.get(id)
		if err != nil {
			return err
		}
		return all(
			eq("state", r.GetState(), types.RequestState_DENIED),
			eq("resolve reason", r.GetResolveReason(), "denied in Jira"),
			eq("resolve annotations", r.GetResolveAnnotations(), map[string][]string{"jira_issue": {"ACC-7"}, "reviewers": {"x@example.com", "y@example.com"}}),
		)
	})
	if id == "" {
		return
	}
	s.check("set-state/denied-stays-denied", func() error {
		err := s.setStateAs(s.plugin, id, types.RequestState_APPROVED, "approve after all")
		if err := expectKind(err, "BadParameter", trace.IsBadParameter); err != nil {
			return err
		}
		if !strings.Contains(err.Error(), "already denied") {
			return fmt.Errorf("message %q does not say the request is already denied", err.Error())
		}
		r, err := s.get(id)
		if err != nil {
			return err
		}
		return eq("state after the refusal", r.GetState(), types.RequestState_DENIED)
	})
	s.check("set-state/deny-again-accepted", func() error {
		if err := s.setStateAs(s.plugin, id, types.RequestState_DENIED, "denied twice"); err != nil {
			return fmt.Errorf("SetAccessRequestState: %v", err)
		}
		r, err := s.get(id)
		if err != nil {
			return err
		}
		return eq("resolve reason", r.GetResolveReason(), "denied twice")
	})
}

// === SubmitAccessReview ===

func (s *suite) reviews() {
	s.check("review/thresholds-approve", func() error {
		req, err := s.create(s.alice, "alice", "two approvals please")
		if err != nil {
			return err
		}
		id := req.GetName()
		after, err := s.review(s.bob, id, types.RequestState_APPROVED, "ok from bob")
		if err != nil {
			return fmt.Errorf("bob's review: %v", err)
		}
		if err := all(
			eq("state after one of two approvals", after.GetState(), types.RequestState_PENDING),
			eq("reviews", len(after.GetReviews()), 1),
		); err != nil {
			return err
		}
		if rv := after.GetReviews()[0]; rv.Author != "bob" || len(rv.ThresholdIndexes) == 0 || rv.Created.IsZero() {
			return fmt.Errorf("stored review %+v: want author bob, threshold indexes and a creation time", rv)
		}
		after, err = s.review(s.carol, id, types.RequestState_APPROVED, "ok from carol")
		if err != nil {
			return fmt.Errorf("carol's review: %v", err)
		}
		if err := all(
			eq("state after two approvals", after.GetState(), types.RequestState_APPROVED),
			eq("resolve reason", after.GetResolveReason(), "ok from carol"),
		); err != nil {
			return err
		}
		r, err := s.get(id)
		if err != nil {
			return err
		}
		return eq("stored state", r.GetState(), types.RequestState_APPROVED)
	})
	s.check("review/thresholds-deny", func() error {
		req, err := s.create(s.alice, "alice", "one denial ends it")
		if err != nil {
			return err
		}
		after, err := s.review(s.bob, req.GetName(), types.RequestState_DENIED, "not today")
		if err != nil {
			return fmt.Errorf("bob's review: %v", err)
		}
		if err := all(
			eq("state after one denial", after.GetState(), types.RequestState_DENIED),
			eq("resolve reason", after.GetResolveReason(), "not today"),
		); err != nil {
			return err
		}
		_, err = s.review(s.carol, req.GetName(), types.RequestState_APPROVED, "too late")
		if err := expectKind(err, "AccessDenied", trace.IsAccessDenied); err != nil {
			return fmt.Errorf("review of a denied request: %v", err)
		}
		if !strings.Contains(err.Error(), "already denied") {
			return fmt.Errorf("review of a denied request: message %q does not say it is already denied", err.Error())
		}
		return nil
	})
	s.check("review/duplicate-refused", func() error {
		req, err := s.create(s.alice, "alice", "review me once")
		if err != nil {
			return err
		}
		if _, err := s.review(s.bob, req.GetName(), types.RequestState_APPROVED, "first"); err != nil {
			return fmt.Errorf("first review: %v", err)
		}
		_, err = s.review(s.bob, req.GetName(), types.RequestState_APPROVED, "second")
		if err := expectKind(err, "AccessDenied", trace.IsAccessDenied); err != nil {
			return err
		}
		// What the Go plugins test to treat a repeated review as done.
		if !strings.HasSuffix(err.Error(), "has already reviewed this request") {
			return fmt.Errorf("message %q does not end with %q", err.Error(), "has already reviewed this request")
		}
		return nil
	})
	s.check("review/pending-proposal-refused", func() error {
		req, err := s.create(s.alice, "alice", "odd review")
		if err != nil {
			return err
		}
		_, err = s.review(s.bob, req.GetName(), types.RequestState_PENDING, "maybe")
		return expectKind(err, "BadParameter", trace.IsBadParameter)
	})
}

// === Plugin data ===

func (s *suite) pluginDataOf(id string) (map[string]string, int, error) {
	ctx, cancel := s.rpc()
	defer cancel()
	data, err := s.plugin.GetPluginData(ctx, types.PluginDataFilter{Kind: types.KindAccessRequest, Resource: id, Plugin: plugin})
	if err != nil {
		return nil, 0, fmt.Errorf("GetPluginData: %v", err)
	}
	if len(data) == 0 {
		return nil, 0, nil
	}
	var entry map[string]string
	if e := data[0].Entries()[plugin]; e != nil {
		entry = e.Data
	}
	if name := data[0].GetName(); name != id {
		return nil, 0, fmt.Errorf("plugin data named %q, want the request id %q", name, id)
	}
	if sub := data[0].GetSubKind(); sub != types.KindAccessRequest {
		return nil, 0, fmt.Errorf("plugin data sub-kind %q, want %q", sub, types.KindAccessRequest)
	}
	return entry, len(data), nil
}

func (s *suite) updatePluginData(clt *client.Client, kind, id string, set, expect map[string]string) error {
	ctx, cancel := s.rpc()
	defer cancel()
	return clt.UpdatePluginData(ctx, types.PluginDataUpdateParams{Kind: kind, Resource: id, Plugin: plugin, Set: set, Expect: expect})
}

func (s *suite) pluginData() {
	var id string
	s.check("plugin-data/none-at-first", func() error {
		req, err := s.create(s.dave, "dave", "ticket me")
		if err != nil {
			return err
		}
		id = req.GetName()
		_, n, err := s.pluginDataOf(id)
		if err != nil {
			return err
		}
		return eq("records before any update", n, 0)
	})
	if id == "" {
		return
	}
	s.check("plugin-data/create-with-empty-expect", func() error {
		err := s.updatePluginData(s.plugin, types.KindAccessRequest, id,
			map[string]string{"issue_id": "10001", "issue_key": "ACC-1"},
			map[string]string{"issue_id": ""})
		if err != nil {
			return fmt.Errorf("UpdatePluginData: %v", err)
		}
		data, _, err := s.pluginDataOf(id)
		if err != nil {
			return err
		}
		return eq("data", data, map[string]string{"issue_id": "10001", "issue_key": "ACC-1"})
	})
	s.check("plugin-data/stale-expect-is-compare-failed", func() error {
		err := s.updatePluginData(s.plugin, types.KindAccessRequest, id,
			map[string]string{"issue_id": "10002"},
			map[string]string{"issue_id": ""})
		if err := expectKind(err, "CompareFailed", trace.IsCompareFailed); err != nil {
			return err
		}
		data, _, err := s.pluginDataOf(id)
		if err != nil {
			return err
		}
		return eq("data after the refused update", data, map[string]string{"issue_id": "10001", "issue_key": "ACC-1"})
	})
	s.check("plugin-data/matching-expect-swaps", func() error {
		err := s.updatePluginData(s.plugin, types.KindAccessRequest, id,
			map[string]string{"issue_id": "10002"},
			map[string]string{"issue_id": "10001", "issue_key": "ACC-1"})
		if err != nil {
			return fmt.Errorf("UpdatePluginData: %v", err)
		}
		data, _, err := s.pluginDataOf(id)
		if err != nil {
			return err
		}
		return eq("data", data, map[string]string{"issue_id": "10002", "issue_key": "ACC-1"})
	})
	s.check("plugin-data/empty-value-deletes", func() error {
		err := s.updatePluginData(s.plugin, types.KindAccessRequest, id, map[string]string{"issue_key": ""}, nil)
		if err != nil {
			return fmt.Errorf("UpdatePluginData: %v", err)
		}
		data, _, err := s.pluginDataOf(id)
		if err != nil {
			return err
		}
		return eq("data", data, map[string]string{"issue_id": "10002"})
	})
}

// === Errors as trace classifies them ===

func (s *suite) errorsNotFound() error {
	missing := newID()
	var problems []string
	note := func(what string, err error) {
		if err != nil {
			problems = append(problems, what+": "+err.Error())
		}
	}
	note("SetAccessRequestState", expectKind(s.setStateAs(s.plugin, missing, types.RequestState_APPROVED, "x"), "NotFound", trace.IsNotFound))
	_, err := s.review(s.bob, missing, types.RequestState_APPROVED, "x")
	note("SubmitAccessReview", expectKind(err, "NotFound", trace.IsNotFound))
	err = s.updatePluginData(s.plugin, types.KindAccessRequest, missing, map[string]string{"k": "v"}, nil)
	note("UpdatePluginData", expectKind(err, "NotFound", trace.IsNotFound))
	return joined(problems)
}

func (s *suite) errorsAccessDenied() error {
	var problems []string
	note := func(what string, err error) {
		if err != nil {
			problems = append(problems, what+": "+err.Error())
		}
	}
	req, err := s.create(s.alice, "alice", "mine")
	if err != nil {
		return err
	}
	id := req.GetName()
	note("requester's SetAccessRequestState", expectKind(s.setStateAs(s.alice, id, types.RequestState_APPROVED, "self"), "AccessDenied", trace.IsAccessDenied))
	_, err = s.review(s.alice, id, types.RequestState_APPROVED, "self")
	note("requester's review of her own request", expectKind(err, "AccessDenied", trace.IsAccessDenied))
	ctx0, cancel0 := s.rpc()
	defer cancel0()
	_, err = s.bob.SubmitAccessReview(ctx0, types.AccessReviewSubmission{RequestID: id, Review: types.AccessReview{
		Author: "carol", ProposedState: types.RequestState_APPROVED, Reason: "as carol", Created: time.Now().UTC(),
	}})
	note("review on behalf of another user", expectKind(err, "AccessDenied", trace.IsAccessDenied))
	note("requester's UpdatePluginData", expectKind(s.updatePluginData(s.alice, types.KindAccessRequest, id, map[string]string{"k": "v"}, nil), "AccessDenied", trace.IsAccessDenied))
	note("requester's watch of every request", expectKind(s.watchError(s.alice, types.WatchKind{Kind: types.KindAccessRequest}), "AccessDenied", trace.IsAccessDenied))
	ctx, cancel := s.rpc()
	defer cancel()
	note("requester's DeleteAccessRequest", expectKind(s.alice.DeleteAccessRequest(ctx, id), "AccessDenied", trace.IsAccessDenied))
	return joined(problems)
}

func (s *suite) errorsBadParameter() error {
	var problems []string
	note := func(what string, err error) {
		if err != nil {
			problems = append(problems, what+": "+err.Error())
		}
	}
	req, err := s.create(s.dave, "dave", "params")
	if err != nil {
		return err
	}
	id := req.GetName()
	note("UpdatePluginData of kind node", expectKind(s.updatePluginData(s.plugin, types.KindNode, id, map[string]string{"k": "v"}, nil), "BadParameter", trace.IsBadParameter))
	ctx, cancel := s.rpc()
	defer cancel()
	_, err = s.plugin.GetPluginData(ctx, types.PluginDataFilter{Kind: types.KindNode, Resource: id})
	note("GetPluginData of kind node", expectKind(err, "BadParameter", trace.IsBadParameter))
	note("watch with an unknown filter key", expectKind(s.watchError(s.plugin, types.WatchKind{Kind: types.KindAccessRequest, Filter: map[string]string{"requester": "dave"}}), "BadParameter", trace.IsBadParameter))
	return joined(problems)
}

// errorsNotImplemented: the 10.3 client's CreateAccessRequest calls the unary RPC that v17 no longer
// serves (it was replaced by CreateAccessRequestV2); an unknown method must read as NotImplemented,
// which is what Go clients branch on to fall back.
func (s *suite) errorsNotImplemented() error {
	req, err := types.NewAccessRequest(newID(), "dave", role)
	if err != nil {
		return err
	}
	ctx, cancel := s.rpc()
	defer cancel()
	return expectKind(s.dave.CreateAccessRequest(ctx, req), "NotImplemented", trace.IsNotImplemented)
}

// watchError opens a watch that the server must refuse and returns how it ended.
func (s *suite) watchError(clt *client.Client, kind types.WatchKind) error {
	ctx, cancel := context.WithTimeout(s.ctx, step)
	defer cancel()
	w, err := clt.NewWatcher(ctx, types.Watch{Kinds: []types.WatchKind{kind}})
	if err != nil {
		return err
	}
	defer w.Close()
	select {
	case ev := <-w.Events():
		return fmt.Errorf("the watch was accepted (first event %v)", ev.Type)
	case <-w.Done():
		return w.Error()
	}
}

// === Disconnections (the harness acts on the server when asked) ===

var stdin = bufio.NewReader(os.Stdin)

// ask prints `ASK <action>` and waits for the harness to answer `ok` on stdin once it has acted.
func ask(action string) error {
	fmt.Printf("ASK %s\n", action)
	line, err := stdin.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from the harness to %q: %v", action, err)
	}
	if strings.TrimSpace(line) != "ok" {
		return fmt.Errorf("the harness answered %q to %q", strings.TrimSpace(line), action)
	}
	return nil
}

func (s *suite) openWatcher(clt *client.Client) (types.Watcher, error) {
	w, err := clt.NewWatcher(s.ctx, types.Watch{Kinds: []types.WatchKind{{Kind: types.KindAccessRequest}}})
	if err != nil {
		return nil, fmt.Errorf("NewWatcher: %v", err)
	}
	ev, err := nextEvent(w, "")
	if err != nil {
		w.Close()
		return nil, err
	}
	if ev.Type != types.OpInit {
		w.Close()
		return nil, fmt.Errorf("first event is %v, want %v", ev.Type, types.OpInit)
	}
	return w, nil
}

// watcherEnds waits for a watcher to end and checks that Go plugins would re-watch (they do on
// ConnectionProblem or EOF, and give up on anything else).
func watcherEnds(w types.Watcher) error {
	select {
	case ev := <-w.Events():
		return fmt.Errorf("got a %v event instead of the end of the stream", ev.Type)
	case <-w.Done():
	case <-time.After(step):
		return fmt.Errorf("the watcher was not closed within %v", step)
	}
	if err := w.Error(); !trace.IsConnectionProblem(err) && !trace.IsEOF(err) {
		return fmt.Errorf("watcher ended with %T %q, which Go plugins do not retry (want ConnectionProblem or EOF)", trace.Unwrap(err), oneLine(fmt.Sprint(err)))
	}
	return nil
}

func (s *suite) watchClosedByServer() error {
	w, err := s.openWatcher(s.plugin)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := ask("drop-watchers"); err != nil {
		return err
	}
	if err := watcherEnds(w); err != nil {
		return err
	}
	again, err := s.openWatcher(s.plugin)
	if err != nil {
		return fmt.Errorf("watching again: %v", err)
	}
	again.Close()
	return nil
}

func (s *suite) reconnectAfterRestart() error {
	w, err := s.openWatcher(s.plugin)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := ask("restart-auth"); err != nil {
		return err
	}
	if err := watcherEnds(w); err != nil {
		return err
	}
	// The same client reconnects by itself; until it has, calls fail as ConnectionProblem.
	deadline := time.Now().Add(3 * step)
	for {
		ctx, cancel := s.rpc()
		_, err := s.plugin.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		if !trace.IsConnectionProblem(err) {
			return fmt.Errorf("Ping while reconnecting: %T %q, want ConnectionProblem", trace.Unwrap(err), oneLine(err.Error()))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reconnected within %v: %v", 3*step, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	again, err := s.openWatcher(s.plugin)
	if err != nil {
		return fmt.Errorf("watching after the restart: %v", err)
	}
	again.Close()
	return nil
}

// === TLS refusals ===

func (s *suite) noClientCert() error {
	pem, err := os.ReadFile(filepath.Join(s.dir, "host-ca.pem"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("host-ca.pem holds no certificate")
	}
	creds := client.LoadTLS(&tls.Config{RootCAs: pool, ServerName: "teleport.cluster.local"})
	return s.mustBeRefused("no client certificate", creds)
}

func (s *suite) foreignCA() error {
	return s.mustBeRefused("client certificate of another CA", client.LoadIdentityFile(s.identity("foreign-ca")))
}

// mustBeRefused: either the connection fails, or (Auth accepts TLS without a client certificate, as
// Go's VerifyClientCertIfGiven does) the first RPC is refused as access denied. Nothing may succeed.
func (s *suite) mustBeRefused(what string, creds client.Credentials) error {
	// A refused handshake never gets the connection ready: client.New waits out the dial timeout.
	clt, err := s.connectWithin(2*time.Second, creds, s.authAddr, "")
	if err != nil {
		info("%s: client.New failed: %s", what, oneLine(err.Error()))
		return nil
	}
	defer clt.Close()
	ctx, cancel := s.rpc()
	defer cancel()
	_, err = clt.Ping(ctx)
	if err == nil {
		return errors.New("connected and Ping succeeded")
	}
	info("%s: connected, then Ping failed: %s", what, oneLine(err.Error()))
	return expectKind(err, "AccessDenied", trace.IsAccessDenied)
}

// === Helpers ===

func expectKind(err error, kind string, is func(error) bool) error {
	if err == nil {
		return fmt.Errorf("succeeded, want a %s error", kind)
	}
	if !is(err) {
		return fmt.Errorf("error %T %q is not %s", trace.Unwrap(err), err.Error(), kind)
	}
	return nil
}

func eq(what string, got, want interface{}) error {
	if reflect.DeepEqual(got, want) {
		return nil
	}
	return fmt.Errorf("%s = %v, want %v", what, show(got), show(want))
}

func show(v interface{}) string {
	if m, ok := v.(map[string]string); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
		}
		return "{" + strings.Join(parts, " ") + "}"
	}
	return fmt.Sprintf("%#v", v)
}

func all(errs ...error) error {
	var problems []string
	for _, err := range errs {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	return joined(problems)
}

func joined(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
