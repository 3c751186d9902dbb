<?php

use Illuminate\Support\Facades\Broadcast;

// private-plant.{id}: operators 7 and 8 may watch plant 1; operator 7 every plant.
Broadcast::channel('plant.{id}', fn ($user, $id) => $user->id === '7' || ($id === '1' && $user->id === '8'));

// presence-control-room: everyone logged in, with member info.
Broadcast::channel('control-room', fn ($user) => ['id' => $user->id, 'name' => $user->name, 'shift' => 'A/B']);

// private-vault: nobody.
Broadcast::channel('vault', fn ($user) => false);
