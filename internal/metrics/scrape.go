package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Parse reads a text exposition with Prometheus's own parser.
func Parse(text string) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parsing metrics, %w", err)
	}
	return fams, nil
}

// Scrape reads url (…/metrics) as Prometheus would.
func Scrape(ctx context.Context, url string) (Families, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	return Parse(string(body))
}

// Value is the value of the sample of family name whose labels are exactly
// labels (name, value pairs), and whether there is one. A histogram's
// value is its count of observations.
func (f Families) Value(name string, labels ...string) (float64, bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		if len(have) != len(labels)/2 {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// Sample is a value a scrape should hold: the sample of family Name whose
// labels are exactly Labels (name, value pairs).
type Sample struct {
	Name   string
	Labels []string
	Want   float64
}

// Mismatches says of each sample of want that f does not hold, or holds
// with another value, what it found; none when f holds them all.
func (f Families) Mismatches(want ...Sample) []string {
	var out []string
	for _, s := range want {
		got, ok := f.Value(s.Name, s.Labels...)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s%v: not exported", s.Name, s.Labels))
		case got != s.Want:
			out = append(out, fmt.Sprintf("%s%v: %v, want %v", s.Name, s.Labels, got, s.Want))
		}
	}
	return out
}
