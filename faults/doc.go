// Package faults holds the tests that start real processes and break them: kill -9 of the
// worker at random moments, a Redis restart, a directory outage.
package faults
