package health

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/amqpha/amqpha/vipd/config"
)

// TLSFromSSL turns a configuration's SSL block into the TLS settings of
// its SSL_GET checks ([Options.TLS]): the ca file's certificates as the
// only roots, and the client certificate and key. A nil block gives nil
// (the system's roots). It reads the files; each file that cannot be used
// is one of the joined errors, and the settings hold what could be read.
func TLSFromSSL(ssl *config.SSL) (*tls.Config, error) {
	if ssl == nil {
		return nil, nil
	}
	var errs []error
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ssl.CA != "" {
		pem, err := os.ReadFile(ssl.CA)
		if err != nil {
			errs = append(errs, fmt.Errorf("SSL: ca: %w", err))
		} else {
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("SSL: ca: %s holds no PEM certificate", ssl.CA))
			}
		}
	}
	if ssl.Certificate != "" && ssl.Key != "" {
		cert, err := tls.LoadX509KeyPair(ssl.Certificate, ssl.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("SSL: certificate %s and key %s: %w", ssl.Certificate, ssl.Key, err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	return cfg, errors.Join(errs...)
}
