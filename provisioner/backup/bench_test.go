package backup

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// syntheticDump returns about n bytes that look like pg_dump's COPY data
// for Odoo tables: ids, names, dates, JSON-ish text, some noise.
func syntheticDump(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"sale", "order", "partner", "invoice", "draft", "posted", "Odoo", "product", "stock", "move", "account", "journal", "EUR", "true", "false", "\\N"}
	var b bytes.Buffer
	b.WriteString("COPY public.account_move_line (id, name, ref, date, amount, state, data) FROM stdin;\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d\t%s %s %d\t%s/%d/%05d\t2026-%02d-%02d\t%d.%02d\t%s\t{\"en_US\": \"%s %s\", \"k\": %x}\n",
			i, words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(100000),
			words[r.IntN(len(words))], 2026, r.IntN(99999), 1+r.IntN(12), 1+r.IntN(28),
			r.IntN(100000), r.IntN(100), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], r.Uint64())
	}
	b.WriteString("\\.\n")
	return b.Bytes()
}

// BenchmarkDeflateLevels measures compress/flate's levels on dump-like
// text: the MB/s and the ratio (reported as compressed/original).
func BenchmarkDeflateLevels(b *testing.B) {
	data := syntheticDump(16 << 20)
	for _, level := range []int{flate.BestSpeed, 2, 3, 4, flate.DefaultCompression} {
		b.Run(fmt.Sprintf("level%d", level), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var out countingDiscard
			for b.Loop() {
				out = 0
				w, _ := flate.NewWriter(&out, level)
				w.Write(data)
				w.Close()
			}
			b.ReportMetric(float64(out)/float64(len(data)), "ratio")
		})
	}
}

type countingDiscard int64

func (c *countingDiscard) Write(p []byte) (int, error) {
	*c += countingDiscard(len(p))
	return len(p), nil
}

// BenchmarkWrite writes a 100 MB dump and a 50 MB filestore (half images,
// half text) to a file. Compare with
// `time (cat dump.sql > d && zip -q -1 -r out.zip d filestore)`.
func BenchmarkWrite(b *testing.B) {
	dump := syntheticDump(100 << 20)
	fs := b.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	text := syntheticDump(1 << 20)
	for i := range 50 {
		dir := filepath.Join(fs, fmt.Sprintf("%02x", i))
		os.MkdirAll(dir, 0o755)
		data := text
		if i%2 == 0 {
			data = make([]byte, 1<<20)
			for j := range data {
				data[j] = byte(r.Uint32())
			}
			copy(data, []byte{0x89, 'P', 'N', 'G'})
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02x%038d", i, i)), data, 0o644)
	}
	out := filepath.Join(b.TempDir(), "out.zip")
	b.SetBytes(int64(len(dump)) + 50<<20)
	for b.Loop() {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		_, err = Write(context.Background(), f, Source{
			Format:       FormatZip,
			Dump:         func(ctx context.Context, w io.Writer) error { _, err := w.Write(dump); return err },
			FilestoreDir: fs,
			Manifest:     testManifest("bench"),
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	fi, _ := os.Stat(out)
	b.ReportMetric(float64(fi.Size())/float64(len(dump)+50<<20), "ratio")
}

// BenchmarkScan measures ScanPlain and RestoreScript on a dump that is
// mostly COPY data, and on one that is all statements (DDL, function
// bodies).
func BenchmarkScan(b *testing.B) {
	var ddl bytes.Buffer
	for i := 0; ddl.Len() < 16<<20; i++ {
		fmt.Fprintf(&ddl, "CREATE FUNCTION public.f%d(a integer) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN 'x' || a; END $$;\nCOMMENT ON FUNCTION public.f%d(integer) IS 'a comment ''quoted''';\nGRANT EXECUTE ON FUNCTION public.f%d(integer) TO odoo;\n", i, i, i)
	}
	for name, data := range map[string][]byte{"copy": syntheticDump(32 << 20), "ddl": ddl.Bytes()} {
		b.Run("ScanPlain/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := ScanPlain(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("RestoreScript/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := io.Copy(io.Discard, RestoreScript(bytes.NewReader(data))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
