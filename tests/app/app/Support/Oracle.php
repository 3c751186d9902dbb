<?php

namespace App\Support;

use App\Events\NamedOracleEvent;
use App\Events\OracleEvent;
use Carbon\Carbon;
use Illuminate\Broadcasting\Channel;
use Illuminate\Broadcasting\PresenceChannel;
use Illuminate\Broadcasting\PrivateChannel;
use Illuminate\Support\Collection;
use Illuminate\Support\Facades\Broadcast;

/**
 * The events the oracle test sends through Laravel's own RedisBroadcaster and
 * through the scada driver: every message must be byte-identical.
 */
final class Oracle
{
    /** Broadcasts every case through $connection; returns the number of Redis messages expected. */
    public static function broadcastAll(string $connection): int
    {
        $messages = 0;
        $several = [new Channel('oracle-public'), new PrivateChannel('oracle.1'), new PresenceChannel('oracle-room')];

        // Unicode, floats, nested arrays and objects; sent toOthers() (the request's X-Socket-ID).
        broadcast(new OracleEvent(self::readings(), self::meta(), $several))->via($connection)->toOthers();
        $messages += 3;

        // broadcastAs / broadcastWith, not toOthers: socket null.
        broadcast(new NamedOracleEvent('never sent', [new PrivateChannel('oracle.2'), new Channel('oracle-public')]))->via($connection);
        $messages += 2;

        // More channels than Pusher allows in one event (100).
        $many = array_map(fn ($i) => new Channel("oracle-many-$i"), range(1, 130));
        broadcast(new OracleEvent([1, 2, 3], null, $many))->via($connection);
        $messages += 130;

        // Laravel 11+: anonymous events.
        if (class_exists(\Illuminate\Broadcasting\AnonymousEvent::class)) {
            Broadcast::on([new Channel('oracle-anon'), new PrivateChannel('oracle.3')])->via($connection)
                ->as('oracle.anonymous')->with(['note' => 'ünïcode/slash', 'n' => 0.1 + 0.2])->toOthers()->sendNow();
            Broadcast::on('oracle-anon')->via($connection)->sendNow();
            $messages += 3;
        }

        return $messages;
    }

    private static function readings(): array
    {
        return [
            ['tag' => 'Grüße/東京 🚰', 'value' => 21.5, 'unit' => '°C'],
            ['tag' => "quote \" backslash \\ tab \t newline \n nul-free <tag> & \u{2028}", 'value' => 0.1],
            ['tag' => 'floats', 'third' => 1 / 3, 'big' => 1e100, 'small' => -1.5e-7, 'negzero' => -0.0, 'whole' => 100.0, 'int' => PHP_INT_MAX, 'min' => PHP_INT_MIN],
            ['tag' => 'empty', 'list' => [], 'map' => [3 => 'x', 7 => 'y'], 'null' => null, 'flags' => [true, false]],
        ];
    }

    private static function meta(): array
    {
        $object = new \stdClass();
        $object->name = 'plant/1';
        $object->nested = ['deep' => ['deeper' => ['deepest' => 'ok']]];

        return [
            'object' => $object,
            'empty_object' => new \stdClass(),
            'serializable' => new OracleState('running', 42.0),
            'at' => Carbon::parse('2026-01-02 03:04:05.123456', 'UTC'),
            'collection' => new Collection(['a' => 1, 'b' => [1.5, 2.5]]),
        ];
    }
}
