<?php

use Illuminate\Broadcasting\Broadcasters\Broadcaster;
use Illuminate\Support\Facades\Broadcast;

// private-plant.{id}: operators 7 and 8 may watch plant 1; operator 7 every plant.
Broadcast::channel('plant.{id}', fn ($user, $id) => $user->id === '7' || ($id === '1' && $user->id === '8'));

// private-cache-plant.{id} (Laravel strips "private-"): the same rule as plant.{id}.
Broadcast::channel('cache-plant.{id}', fn ($user, $id) => $user->id === '7' || ($id === '1' && $user->id === '8'));

// presence-control-room: everyone logged in, with member info.
Broadcast::channel('control-room', fn ($user) => ['id' => $user->id, 'name' => $user->name, 'shift' => 'A/B']);

// private-vault: nobody.
Broadcast::channel('vault', fn ($user) => false);

// The oracle's channels: private-secure.{id} for operator 7, a presence
// channel whose member info needs escaping, one whose callback returns true.
Broadcast::channel('secure.{id}', fn ($user, $id) => (string) $user->id === '7');
Broadcast::channel('oracle-room', fn ($user) => ['id' => $user->id, 'name' => "Bediener {$user->id}", 'site' => 'Zürich/Halle 3', 'note' => '"ok" <b>&</b> 東京']);
Broadcast::channel('oracle-flag', fn ($user) => true);

// pusher:signin users (Laravel 10+), as an app using the pusher driver would register them.
if (method_exists(Broadcaster::class, 'resolveAuthenticatedUserUsing')) {
    Broadcast::resolveAuthenticatedUserUsing(fn ($request) => $request->user()
        ? ['id' => (string) $request->user()->getAuthIdentifier(), 'name' => 'Operator ' . $request->user()->getAuthIdentifier() . ' (A/B, Zürich)']
        : null);
}
