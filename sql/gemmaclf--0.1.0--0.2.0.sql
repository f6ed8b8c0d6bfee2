-- gemmaclf 0.1.0 -> 0.2.0 (ALTER EXTENSION gemmaclf UPDATE)
\echo Use "ALTER EXTENSION gemmaclf UPDATE TO '0.2.0'" to load this file. \quit

-- Every object added or changed in 0.2.0 is created here AND in gemmaclf--0.2.0.sql;
-- sql/upgrade.sql checks that a fresh 0.2.0 and an upgraded 0.1.0 have the same objects.
