package httpauth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// MinTokenLen is the shortest token HashToken accepts: a token is hashed
// with fast SHA-256, so it must be too long to guess.
const MinTokenLen = 20

// MinPasswordLen is the shortest password HashPassword accepts.
const MinPasswordLen = 8

// HashPassword returns the auth-file hash of password, with bcrypt at cost
// (bcrypt.DefaultCost if 0).
func HashPassword(password string, cost int) (string, error) {
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("password: want at least %d characters, got %d", MinPasswordLen, len(password))
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return prefixBcrypt + string(h), nil
}

// HashToken returns the auth-file hash of a random token.
func HashToken(token string) (string, error) {
	if len(token) < MinTokenLen {
		return "", fmt.Errorf("token: want at least %d characters of random text, got %d", MinTokenLen, len(token))
	}
	sum := sha256.Sum256([]byte(token))
	return prefixSHA256 + hex.EncodeToString(sum[:]), nil
}

// Line returns an auth-file line for name, role and hash.
func Line(name string, role Role, hash string) string {
	return name + " " + string(role) + " " + hash
}

func bcryptCost(hash []byte) (int, error) { return bcrypt.Cost(hash) }
