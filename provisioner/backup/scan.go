package backup

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxCapture bounds a statement that RestoreScript holds to rewrite it
// (GRANT, REVOKE, …): pg_dump writes them on a line or two.
const maxCapture = 1 << 20

// maxMetaLine bounds a \restrict or \unrestrict line.
const maxMetaLine = 256

// ScanPlain reads a plain SQL dump and refuses, with an *Error naming the
// line, anything psql would run as a meta-command: a backslash outside
// string literals, quoted identifiers, dollar-quoted bodies, comments and
// COPY … FROM stdin data. Only pg_dump's own `\restrict <key>` before the
// first statement and the matching `\unrestrict <key>` at the very end are
// let through, and `\.` ending COPY data. It also refuses what could make
// its reading and psql's differ (see scanner).
func ScanPlain(r io.Reader) error {
	s := newScanner(r, nil)
	for {
		if err := s.step(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// RestoreScript wraps a plain dump for `psql -X -v ON_ERROR_STOP=1` run by
// a non-superuser that owns the target database. Statements pass through
// unchanged except those such a role cannot run and that do no harm when
// skipped:
//
//   - COMMENT ON EXTENSION … is dropped (only the extension's owner may
//     comment it, and the target's extensions are made by the superuser);
//   - CREATE EXTENSION x … becomes CREATE EXTENSION IF NOT EXISTS x … (the
//     target may have it already, as Odoo creates pg_trgm and unaccent);
//   - GRANT, REVOKE and ALTER DEFAULT PRIVILEGES run inside a DO block that
//     turns "role does not exist" (another cluster's roles) and
//     "permission denied" into a WARNING;
//   - SET transaction_timeout (pg_dump 17 and later) is dropped: older
//     servers do not know it.
//
// The dump's own \restrict/\unrestrict pair is replaced by a pair with a
// fresh random key (always written, also for dumps without one), so that
// psql (15.14 and later) itself refuses any meta-command in between and a
// dump cannot lift the restriction with a key it knows. Any other
// meta-command fails the reader with an *Error (ScanPlain runs first; this
// is defence in depth), and so does a dump that ends inside a statement. It
// streams in constant memory: only a statement it rewrites is held, bounded
// to 1 MiB. The output needs psql 15.14 or later (\restrict).
//
// A custom-format dump is restored the same way, through its plain form:
// `pg_restore --no-owner -f -` (reading the dump on its standard input)
// into RestoreScript into psql. Run directly into the database, pg_restore
// either stops at the first harmless error (--exit-on-error: COMMENT ON
// EXTENSION, a missing role) or lets real errors pass with exit status 1
// ("errors ignored on restore"), and the two cannot be told apart; through
// RestoreScript the harmless ones are rewritten and every remaining error
// stops the restore (psql's exit status 3).
func RestoreScript(r io.Reader) io.Reader {
	key := make([]byte, 24)
	rand.Read(key)
	return &restoreReader{s: newScanner(r, &rewriter{key: hex.EncodeToString(key)})}
}

type restoreReader struct {
	s   *scanner
	err error
}

func (rr *restoreReader) Read(p []byte) (int, error) {
	out := &rr.s.rw.out
	// Fill p as far as possible: a step often yields a byte or two, and a
	// reader handing them out one by one makes psql's pipe crawl.
	for out.Len() < len(p) && rr.err == nil {
		rr.err = rr.s.step()
		if errors.Is(rr.err, io.EOF) {
			rr.s.rw.finish()
		}
	}
	if out.Len() > 0 {
		return out.Read(p)
	}
	return 0, rr.err
}

// The lexical states, after psql's psqlscan.l (PostgreSQL 15).
type lexState int

const (
	stNormal lexState = iota
	stLineComment
	stBlockComment
	stQuote  // '…': standard_conforming_strings decides what a backslash does
	stEQuote // E'…': a backslash escapes the next byte
	stIdent  // "…"
	stDollar // $tag$…$tag$
	stCopy   // COPY … FROM stdin data, line by line
)

// scanner lexes a plain dump the way psql does, as far as it matters for
// meta-commands: where psql would see a backslash command, and where a
// statement ends (psql sends it at a semicolon outside parentheses and
// outside a CREATE FUNCTION/PROCEDURE's BEGIN … END). Where psql's reading
// could depend on state the scanner cannot know, it refuses rather than
// guess:
//
//   - a backslash before the closing quote of a '…' literal (with
//     standard_conforming_strings off the quote would not close it, and a
//     dump can turn it off);
//   - a number running into a word, a quote or a dollar sign (psql's junk
//     rules);
//   - a psql variable reference (:name, :'name', :"name");
//   - a COPY inside a statement psql sends whole with others (after a
//     semicolon that does not end the statement for psql);
//   - text after a COPY … FROM stdin; on its line.
type scanner struct {
	r    *bufio.Reader
	rw   *rewriter // nil: scan only
	line int
	st   lexState

	commentDepth int
	dollarTag    []byte
	quoteBS      int // backslashes in a row inside stQuote

	// The psql statement being read.
	inStmt       bool
	words        []string // its first unquoted words, lower-cased
	identCount   int
	identFirst   [4]byte
	parenDepth   int
	beginDepth   int
	afterHidden  bool // a semicolon psql does not send at was seen
	hiddenCopy   bool
	pendingCopy  bool // a COPY … FROM stdin ended on this line
	lastWord     string
	fromStdin    bool
	stmtLine     int
	restrictKey  string
	unrestricted bool
	statements   int
}

func newScanner(r io.Reader, rw *rewriter) *scanner {
	return &scanner{r: bufio.NewReaderSize(r, 64<<10), rw: rw, line: 1}
}

func (s *scanner) refuse(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf("dump line %d: ", s.line) + fmt.Sprintf(format, args...)}
}

func (s *scanner) emit(b ...byte) {
	if s.rw != nil {
		s.rw.write(b)
	}
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// peek returns the n-th byte ahead (0 = next), or -1.
func (s *scanner) peek(n int) int {
	b, err := s.r.Peek(n + 1)
	if len(b) <= n {
		_ = err
		return -1
	}
	return int(b[n])
}

func (s *scanner) next() (byte, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, err
	}
	if c == '\n' {
		s.line++
	}
	return c, nil
}

// step consumes one lexical unit; io.EOF at a clean end.
func (s *scanner) step() error {
	switch s.st {
	case stCopy:
		return s.copyLine()
	case stLineComment:
		s.skipRun("\n\r")
	case stBlockComment:
		s.skipRun("*/")
	case stQuote:
		if s.skipRun("\\'") {
			s.quoteBS = 0
		}
	case stEQuote:
		s.skipRun("\\'")
	case stIdent:
		s.skipRun(`"`)
	case stDollar:
		s.skipRun("$")
	}
	c, err := s.next()
	if err == io.EOF {
		return s.atEOF()
	}
	if err != nil {
		return err
	}
	switch s.st {
	case stLineComment:
		s.emit(c)
		if c == '\n' || c == '\r' {
			s.st = stNormal
			if c == '\n' {
				return s.endOfLine()
			}
		}
		return nil
	case stBlockComment:
		s.emit(c)
		if c == '*' && s.peek(0) == '/' {
			s.next()
			s.emit('/')
			s.commentDepth--
			if s.commentDepth == 0 {
				s.st = stNormal
			}
		} else if c == '/' && s.peek(0) == '*' {
			s.next()
			s.emit('*')
			s.commentDepth++
		}
		return nil
	case stQuote:
		s.emit(c)
		switch c {
		case '\\':
			s.quoteBS++
			return nil
		case '\'':
			if s.quoteBS%2 == 1 {
				return s.refuse("a string literal ends with a backslash before its closing quote, which psql reads differently when standard_conforming_strings is off")
			}
			if s.peek(0) == '\'' { // '' is a quote inside the literal
				s.next()
				s.emit('\'')
			} else {
				s.st = stNormal
			}
		}
		s.quoteBS = 0
		return nil
	case stEQuote:
		s.emit(c)
		if c == '\\' {
			d, err := s.next()
			if err != nil {
				return s.refuse("the dump ends inside a string literal")
			}
			s.emit(d)
		} else if c == '\'' {
			if s.peek(0) == '\'' {
				s.next()
				s.emit('\'')
			} else {
				s.st = stNormal
			}
		}
		return nil
	case stIdent:
		s.emit(c)
		if c == '"' {
			if s.peek(0) == '"' {
				s.next()
				s.emit('"')
			} else {
				s.st = stNormal
			}
		}
		return nil
	case stDollar:
		s.emit(c)
		if c == '$' {
			n := len(s.dollarTag)
			b, _ := s.r.Peek(n + 1)
			if len(b) == n+1 && bytes.Equal(b[:n], s.dollarTag) && b[n] == '$' {
				for range n + 1 {
					d, _ := s.next()
					s.emit(d)
				}
				s.st = stNormal
			}
		}
		return nil
	}
	return s.normal(c)
}

// skipRun passes on, in one go, the buffered bytes before the next one of
// stop: inside a quote or comment only those matter. It reports whether it
// passed any.
func (s *scanner) skipRun(stop string) bool {
	n := s.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := s.r.Peek(n)
	i := bytes.IndexAny(b, stop)
	if i < 0 {
		i = n
	}
	if i == 0 {
		return false
	}
	s.line += bytes.Count(b[:i], []byte{'\n'})
	s.emit(b[:i]...)
	s.r.Discard(i)
	return true
}

// normal handles one byte (and what it starts) outside any quote.
func (s *scanner) normal(c byte) error {
	if isSpace(c) {
		s.emit(c)
		if c == '\n' {
			return s.endOfLine()
		}
		return nil
	}
	if c == '-' && s.peek(0) == '-' {
		s.next()
		s.emit('-', '-')
		s.st = stLineComment
		return nil
	}
	if c == '/' && s.peek(0) == '*' {
		s.next()
		s.emit('/', '*')
		s.st = stBlockComment
		s.commentDepth = 1
		return nil
	}
	if c == '\\' {
		return s.meta()
	}
	if s.pendingCopy {
		return s.refuse("text follows COPY … FROM stdin on its line")
	}
	if !s.inStmt {
		s.startStatement()
	}
	switch {
	case c == ';':
		return s.semicolon()
	case c == '(':
		s.parenDepth++
	case c == ')':
		if s.parenDepth > 0 {
			s.parenDepth--
		}
	case c == '\'':
		s.st, s.quoteBS = stQuote, 0
	case c == '"':
		s.st = stIdent
	case c == ':':
		switch d := s.peek(0); {
		case d == ':':
			s.emit(c)
			s.next()
			c = ':'
		case d == '\'' || d == '"' || d == '{' || d >= 0 && isIdentStart(byte(d)):
			return s.refuse("psql variable reference %q", ":"+string(rune(d)))
		}
	case c == '$':
		return s.dollar()
	case isDigit(c) || c == '.' && s.peek(0) >= 0 && isDigit(byte(s.peek(0))):
		return s.number(c)
	case isIdentStart(c):
		return s.word(c)
	}
	s.emit(c)
	return nil
}

// word reads an unquoted identifier or keyword, or the prefix of a special
// literal (E'…', U&'…', B'…', X'…', N'…').
func (s *scanner) word(c byte) error {
	d := s.peek(0)
	if (c == 'e' || c == 'E') && d == '\'' {
		s.next()
		s.emit(c, '\'')
		s.st = stEQuote
		return nil
	}
	if (c == 'u' || c == 'U') && d == '&' && (s.peek(1) == '\'' || s.peek(1) == '"') {
		q, _ := s.next()
		q2, _ := s.next()
		s.emit(c, q, q2)
		if q2 == '\'' {
			s.st, s.quoteBS = stQuote, 0
		} else {
			s.st = stIdent
		}
		return nil
	}
	// B'…', X'…' and N'…' are read as '…' literals: for N'…' psql does the
	// same, for the others the rule above refuses more, never less.
	w := []byte{c}
	for {
		d := s.peek(0)
		if d < 0 || !isIdentCont(byte(d)) {
			break
		}
		s.next()
		w = append(w, byte(d))
	}
	s.emit(w...)
	s.addWord(strings.ToLower(string(w)))
	return nil
}

// number reads a numeric literal; one that runs into a word, a quote or a
// dollar sign is refused (psql 15's junk rules split those in ways that are
// not worth copying).
func (s *scanner) number(c byte) error {
	s.emit(c)
	for {
		d := s.peek(0)
		switch {
		case d >= 0 && (isDigit(byte(d)) || d == '.'):
			s.next()
			s.emit(byte(d))
		case d == 'e' || d == 'E':
			k := 1
			if e := s.peek(1); e == '+' || e == '-' {
				k = 2
			}
			if e := s.peek(k); e < 0 || !isDigit(byte(e)) {
				return s.refuse("a number runs into a word")
			}
			for range k {
				x, _ := s.next()
				s.emit(x)
			}
		case d >= 0 && (isIdentStart(byte(d)) || d == '$' || d == '\'' || d == '"'):
			return s.refuse("a number runs into a word")
		default:
			return nil
		}
	}
}

// dollar reads what starts with $: a dollar-quote delimiter, a parameter
// ($1) or a lone dollar sign.
func (s *scanner) dollar() error {
	s.emit('$')
	d := s.peek(0)
	if d >= 0 && isDigit(byte(d)) {
		for {
			d = s.peek(0)
			if d < 0 || !isDigit(byte(d)) {
				break
			}
			s.next()
			s.emit(byte(d))
		}
		if d >= 0 && (isIdentCont(byte(d)) || d == '\'' || d == '"') {
			return s.refuse("a parameter runs into a word")
		}
		return nil
	}
	// $tag$ or $$; a $tag not closed by $ is a lone $ and then a word.
	n := 0
	for {
		d = s.peek(n)
		if d < 0 {
			return nil
		}
		if d == '$' {
			break
		}
		if n == 0 && !isIdentStart(byte(d)) || n > 0 && !(isIdentStart(byte(d)) || isDigit(byte(d))) {
			return nil
		}
		n++
	}
	tag := make([]byte, n)
	for i := range tag {
		tag[i], _ = s.next()
	}
	s.next()
	s.emit(tag...)
	s.emit('$')
	s.dollarTag = tag
	s.st = stDollar
	return nil
}

// addWord records an unquoted word of the current statement and follows
// psql's BEGIN … END tracking for CREATE [OR REPLACE] FUNCTION/PROCEDURE.
func (s *scanner) addWord(w string) {
	if s.afterHidden && len(s.words) == 0 && w == "copy" {
		s.hiddenCopy = true
	}
	if s.afterHidden {
		s.afterHidden = false
	}
	if w == "stdin" && s.lastWord == "from" {
		s.fromStdin = true
	}
	s.lastWord = w
	if len(s.words) < 8 {
		s.words = append(s.words, w)
	}
	if s.rw != nil {
		s.rw.word(s)
	}
	switch w {
	case "create", "function", "procedure", "or", "replace":
		if s.identCount < len(s.identFirst) {
			s.identFirst[s.identCount] = w[0]
		}
	}
	s.identCount++
	f := s.identFirst
	if f[0] == 'c' && (f[1] == 'f' || f[1] == 'p' || f[1] == 'o' && f[2] == 'r' && (f[3] == 'f' || f[3] == 'p')) && s.parenDepth == 0 {
		switch w {
		case "begin":
			s.beginDepth++
		case "case":
			if s.beginDepth >= 1 {
				s.beginDepth++
			}
		case "end":
			if s.beginDepth > 0 {
				s.beginDepth--
			}
		}
	}
}

func (s *scanner) startStatement() {
	s.inStmt = true
	s.words = s.words[:0]
	s.identCount = 0
	s.identFirst = [4]byte{}
	s.parenDepth, s.beginDepth = 0, 0
	s.afterHidden, s.hiddenCopy = false, false
	s.lastWord, s.fromStdin = "", false
	s.stmtLine = s.line
	if s.rw != nil {
		s.rw.start(s)
	}
}

// semicolon ends the statement where psql does, and notes the semicolons
// psql keeps in the statement (the server may split there).
func (s *scanner) semicolon() error {
	if s.parenDepth > 0 || s.beginDepth > 0 {
		s.emit(';')
		s.afterHidden = true
		s.words = s.words[:0]
		if s.rw != nil && s.rw.hold && s.rw.capture == "" {
			s.rw.flush()
		}
		// A hidden statement's words are never rewritten; keep counting
		// for BEGIN … END as psql does.
		return nil
	}
	if s.hiddenCopy {
		return s.refuse("a COPY is hidden inside a statement that psql sends with others (line %d)", s.stmtLine)
	}
	if s.unrestricted {
		return s.refuse("a statement follows \\unrestrict")
	}
	copyIn := len(s.words) > 0 && s.words[0] == "copy" && s.fromStdin
	s.statements++
	s.inStmt = false
	if s.rw != nil {
		s.rw.end(s)
	} else {
		s.emit(';')
	}
	s.pendingCopy = copyIn
	return nil
}

// endOfLine is called after each line feed outside quotes.
func (s *scanner) endOfLine() error {
	if s.pendingCopy {
		s.pendingCopy = false
		s.st = stCopy
	}
	return nil
}

// copyLine passes one line of COPY data; a line that is exactly \. ends it,
// as psql's handleCopyIn reads it.
func (s *scanner) copyLine() error {
	chunk, err := s.r.ReadSlice('\n')
	s.emit(chunk...)
	long := false
	for err == bufio.ErrBufferFull {
		// A long line: pass it on in pieces; it cannot be \. any more.
		long = true
		chunk, err = s.r.ReadSlice('\n')
		s.emit(chunk...)
	}
	switch {
	case err == io.EOF:
		// psql ends COPY data at the end of its input too, but a dump cut
		// there is damaged.
		if !long && string(chunk) == `\.` {
			s.st = stNormal
			return s.atEOF()
		}
		return s.refuse("the dump ends inside COPY data")
	case err != nil:
		return err
	}
	s.line++
	if !long && (string(chunk) == "\\.\n" || string(chunk) == "\\.\r\n") {
		s.st = stNormal
	}
	return nil
}

// meta handles a backslash outside quotes: only pg_dump's \restrict before
// the first statement and its \unrestrict at the end are allowed.
func (s *scanner) meta() error {
	line := s.line
	b, _ := s.r.Peek(maxMetaLine)
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		i = len(b)
	}
	cmd := strings.TrimRight(string(b[:i]), " \t\r")
	name, arg, _ := strings.Cut(cmd, " ")
	shown := "\\" + cmd
	if len(shown) > 60 {
		shown = shown[:60] + "…"
	}
	switch {
	case name == "restrict" && validKey(arg) && s.restrictKey == "" && s.statements == 0 && !s.inStmt:
		s.restrictKey = arg
	case name == "unrestrict" && arg == s.restrictKey && s.restrictKey != "" && !s.inStmt && !s.unrestricted && !s.pendingCopy:
		s.unrestricted = true
	default:
		return &Error{Reason: fmt.Sprintf("dump line %d: psql meta-command %q is not allowed in a dump", line, shown)}
	}
	s.r.Discard(i)
	return nil
}

func validKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (s *scanner) atEOF() error {
	switch s.st {
	case stQuote, stEQuote, stIdent:
		return s.refuse("the dump ends inside a quoted string")
	case stDollar:
		return s.refuse("the dump ends inside a dollar-quoted body")
	case stBlockComment:
		return s.refuse("the dump ends inside a comment")
	}
	if s.pendingCopy {
		return s.refuse("the dump ends inside COPY data")
	}
	if s.inStmt {
		// pg_dump ends every statement; psql would send an unterminated
		// one at the end of its input, after the closing \unrestrict.
		return s.refuse("the dump ends inside a statement (started on line %d)", s.stmtLine)
	}
	return io.EOF
}

// rewriter is RestoreScript's half of the scanner: it holds a statement
// until its first words say whether it is one to rewrite.
type rewriter struct {
	key      string
	out      bytes.Buffer
	started  bool
	finished bool
	hold     bool // holding the statement's bytes in buf
	capture  string
	buf      []byte
}

func (rw *rewriter) begin() {
	if !rw.started {
		rw.started = true
		fmt.Fprintf(&rw.out, "\\restrict %s\n", rw.key)
	}
}

func (rw *rewriter) write(b []byte) {
	rw.begin()
	if rw.hold {
		rw.buf = append(rw.buf, b...)
		return
	}
	rw.out.Write(b)
}

func (rw *rewriter) start(s *scanner) {
	rw.begin()
	rw.hold, rw.capture, rw.buf = true, "", rw.buf[:0]
}

// word decides, from the statement's first words, whether to keep holding
// it (a statement to rewrite) or to let it through.
func (rw *rewriter) word(s *scanner) {
	if !rw.hold || rw.capture != "" {
		if rw.capture != "" && len(rw.buf) > maxCapture {
			rw.capture = "" // too long to be what it looks like: pass it
			rw.flush()
		}
		return
	}
	w := s.words
	match := func(want ...string) (full, prefix bool) {
		for i, x := range want {
			if i >= len(w) {
				return false, true
			}
			if w[i] != x {
				return false, false
			}
		}
		return true, true
	}
	for _, c := range [][]string{
		{"grant"}, {"revoke"}, {"alter", "default", "privileges"},
		{"comment", "on", "extension"}, {"create", "extension"}, {"set", "transaction_timeout"},
	} {
		full, prefix := match(c...)
		if full {
			rw.capture = strings.Join(c, " ")
			return
		}
		if prefix {
			return // undecided
		}
	}
	rw.flush()
}

func (rw *rewriter) flush() {
	rw.hold = false
	rw.out.Write(rw.buf)
	rw.buf = rw.buf[:0]
}

// end is called at a statement's terminating semicolon (not yet written).
func (rw *rewriter) end(s *scanner) {
	if !rw.hold {
		rw.out.WriteByte(';')
		return
	}
	stmt := string(rw.buf)
	rw.hold, rw.buf = false, rw.buf[:0]
	switch rw.capture {
	case "comment on extension", "set transaction_timeout":
		fmt.Fprintf(&rw.out, "-- pgdeck: skipped: %s", oneLine(stmt))
	case "create extension":
		if len(s.words) >= 5 && s.words[2] == "if" && s.words[3] == "not" && s.words[4] == "exists" {
			rw.out.WriteString(stmt + ";")
			return
		}
		// "CREATE EXTENSION" is the first two words, maybe with comments
		// between them: insert after the second word.
		i := indexWord(stmt, 1)
		rw.out.WriteString(stmt[:i] + " IF NOT EXISTS" + stmt[i:] + ";")
	case "grant", "revoke", "alter default privileges":
		tag := "pgdeck"
		for n := 0; strings.Contains(stmt, "$"+tag+"$"); n++ {
			tag = fmt.Sprintf("pgdeck%d", n)
		}
		fmt.Fprintf(&rw.out, "DO $%s$ BEGIN %s; EXCEPTION WHEN undefined_object OR insufficient_privilege THEN RAISE WARNING 'pgdeck: skipped %s: %%', SQLERRM; END $%s$;",
			tag, stmt, strings.ToUpper(rw.capture), tag)
	default:
		rw.out.WriteString(stmt + ";")
	}
}

func (rw *rewriter) finish() {
	if rw.finished {
		return
	}
	rw.finished = true
	rw.begin()
	fmt.Fprintf(&rw.out, "\n\\unrestrict %s\n", rw.key)
}

// indexWord returns the offset just after the n-th (0-based) word of stmt,
// skipping comments.
func indexWord(stmt string, n int) int {
	i := 0
	for w := 0; i < len(stmt); {
		switch {
		case strings.HasPrefix(stmt[i:], "--"):
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				return len(stmt)
			}
			i += j + 1
		case strings.HasPrefix(stmt[i:], "/*"):
			j := strings.Index(stmt[i:], "*/")
			if j < 0 {
				return len(stmt)
			}
			i += j + 2
		case isIdentStart(stmt[i]):
			for i < len(stmt) && isIdentCont(stmt[i]) {
				i++
			}
			if w == n {
				return i
			}
			w++
		default:
			i++
		}
	}
	return i
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
