// Package httpauth holds the users of kvserver's HTTP API: the auth file
// (--http-auth-file), its roles, the hashes of their secrets and a
// Verifier that checks credentials without letting bad ones cost the
// server more than a bounded amount of work.
//
// The auth file has one user per line, three fields separated by spaces:
//
//	# name     role       secret hash
//	alice      readwrite  bcrypt:$2a$10$(53 more characters)
//	dashboard  read       sha256:(64 hex digits: the SHA-256 of a random token)
//
// A bcrypt hash is for a password chosen by a person: it is slow on
// purpose, so a stolen file is slow to crack. A sha256 hash is for a random
// token of at least MinTokenLen characters: guessing it is hopeless anyway,
// and the fast hash lets the server find the user of a bearer token by the
// token alone. HashPassword and HashToken make the lines (kvctl auth hash
// prints them).
//
// The Verifier bounds the cost of bad credentials: successful checks are
// cached (keyed by a SHA-256 of name and secret, never the secret), so a
// valid client pays for bcrypt once per reload; repeated identical failures
// are cached too; and at most a few bcrypt comparisons run at once. A
// request that finds every slot busy is refused at once, as unauthorized,
// instead of queueing: a flood of wrong passwords costs the server at most
// those slots of CPU and never a growing queue.
package httpauth
