// SPDX-License-Identifier: LGPL-2.1-or-later

// x509verify checks a virtcert leaf the way a Go TLS peer would: crypto/x509
// path building with name constraints, and optionally a CRL signed by the
// intermediate. Standard library only, so it builds offline.
//
//	x509verify -roots ROOT.pem -intermediates CHAIN.pem -dns NAME [-crl CRL.pem] LEAF.pem
//
// Exit status: 0 valid, 1 invalid or revoked (reason on stderr), 2 usage or
// unreadable input.
package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

func readPEMCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return certs, nil
}

func readCRL(path string) (*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("%s: PEM block %q is not an X509 CRL", path, block.Type)
		}
		der = block.Bytes
	}
	return x509.ParseRevocationList(der)
}

// RFC 5280 5.3.1
var reasons = map[int]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold",
	8: "removeFromCRL", 9: "privilegeWithdrawn", 10: "aACompromise",
}

var oidReasonCode = []int{2, 5, 29, 21}

func reasonOf(ext []byte) string {
	// ENUMERATED: tag 0x0a, length 1, value
	if len(ext) == 3 && ext[0] == 0x0a && ext[1] == 1 {
		if s, ok := reasons[int(ext[2])]; ok {
			return s
		}
		return fmt.Sprintf("reason %d", ext[2])
	}
	return "malformed reason"
}

func run() (int, error) {
	roots := flag.String("roots", "", "PEM file of trusted roots")
	inters := flag.String("intermediates", "", "PEM file of intermediates (first: the issuer of the CRL)")
	dns := flag.String("dns", "", "DNS name the leaf must be valid for")
	crlPath := flag.String("crl", "", "CRL (PEM or DER) signed by the first intermediate")
	flag.Parse()
	if *roots == "" || *inters == "" || *dns == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: x509verify -roots ROOT.pem -intermediates CHAIN.pem -dns NAME [-crl CRL.pem] LEAF.pem")
		return 2, nil
	}
	rootCerts, err := readPEMCerts(*roots)
	if err != nil {
		return 2, err
	}
	interCerts, err := readPEMCerts(*inters)
	if err != nil {
		return 2, err
	}
	leaves, err := readPEMCerts(flag.Arg(0))
	if err != nil {
		return 2, err
	}
	leaf := leaves[0]

	opts := x509.VerifyOptions{
		DNSName:       *dns,
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		CurrentTime:   time.Now(),
	}
	for _, c := range rootCerts {
		opts.Roots.AddCert(c)
	}
	for _, c := range interCerts {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return 1, fmt.Errorf("invalid: %v", err)
	}

	if *crlPath != "" {
		crl, err := readCRL(*crlPath)
		if err != nil {
			return 2, err
		}
		issuer := interCerts[0]
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			return 1, fmt.Errorf("invalid CRL: signature: %v", err)
		}
		if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
			return 1, errors.New("invalid CRL: issuer is not the intermediate")
		}
		if !bytes.Equal(leaf.RawIssuer, issuer.RawSubject) {
			return 1, errors.New("invalid CRL: the leaf is not issued by the CRL's issuer")
		}
		now := time.Now()
		if now.Before(crl.ThisUpdate) || (!crl.NextUpdate.IsZero() && now.After(crl.NextUpdate)) {
			return 1, fmt.Errorf("invalid CRL: not current (thisUpdate %v, nextUpdate %v)",
				crl.ThisUpdate, crl.NextUpdate)
		}
		for _, rc := range crl.RevokedCertificates {
			if rc.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
				continue
			}
			reason := "unspecified"
			for _, e := range rc.Extensions {
				if e.Id.Equal(oidReasonCode) {
					reason = reasonOf(e.Value)
				}
			}
			return 1, fmt.Errorf("revoked: serial %x at %v, reason %s",
				leaf.SerialNumber, rc.RevocationTime.UTC().Format(time.RFC3339), reason)
		}
	}
	fmt.Printf("valid: serial %x for %s\n", leaf.SerialNumber, *dns)
	return 0, nil
}

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "x509verify:", err)
	}
	os.Exit(code)
}
