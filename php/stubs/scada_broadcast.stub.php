<?php

// IDE and static-analysis stubs for the scada_broadcast extension (version 0.1.0).
// Generated from the built extension by tests/bin/stubs.php --write; `make test` checks them against it. Do not edit.

namespace Scada\Broadcasting;

class BroadcastException extends \RuntimeException
{
    private function __construct() {}
}

class InvalidBroadcastException extends \InvalidArgumentException
{
    private function __construct() {}
}

final class PusherSigner
{
    public function signRequest(string $method, string $path, ?array $query = null, ?string $body = null, ?int $timestamp = null): array {}
    public function authorizeChannel(string $socket_id, string $channel, ?array $presence_data = null): string {}
    public function authenticateUser(string $socket_id, array $user_data): string {}
    public function verifyWebhook(string $key, string $signature, string $body): bool {}
    public function __construct(string $app_key, string $app_secret, ?string $encryption_master_key_base64 = null) {}
}

final class ScadaBroadcastingService
{
    public function broadcastData(mixed $data, ?string $channel = null): bool {}
    public function broadcastBatchData(array $data_array, ?string $channel = null): bool {}
    public function broadcastAggregatedData(array $data, ?string $channel = null, ?int $throttle_ms = null): bool {}
    public function broadcast(mixed $channels, string $event, ?array $payload = null, ?string $socket_id = null): bool {}
    public static function encodeJson(mixed $value): string {}
    public function flush(?int $timeout_ms = null): bool {}
    public function stats(): array {}
    public function __construct(?array $options = null) {}
}
